package dev.optserve.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.optserve.v1.Experiment;
import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Several targets: one gRPC target, calls spread round-robin, a replica down skipped. */
@Timeout(120)
class TargetsTest {
  @ParameterizedTest
  @ValueSource(strings = {"localhost:50051", "dns:///optserve.internal:50051", "unix:/tmp/s"})
  void singleAndGrpcTargetsPassUnchanged(String target) {
    assertEquals(target, Targets.channelTarget(target));
  }

  @Test
  void aCommaSeparatedListBecomesOneTarget() {
    assertEquals(
        "optserve-list:///10.0.0.5:50051,10.0.0.6:50052",
        Targets.channelTarget("10.0.0.5:50051, 10.0.0.6:50052,"));
    assertEquals("optserve-list:///%5B::1%5D:5,host:6", Targets.channelTarget("[::1]:5,host:6"));
  }

  @ParameterizedTest
  @ValueSource(strings = {"a:1,b", "a:1,:2", "a:1,b:99999", ",,"})
  void malformedListsAreRefused(String target) {
    assertThrows(IllegalArgumentException.class, () -> Targets.channelTarget(target));
  }

  private static Experiment definition(String name) {
    return Experiments.builder()
        .name(name)
        .doubleParam("x", 0, 1)
        .metric(Metrics.maximize("value"))
        .build();
  }

  /** Where an experiment was created: the server whose experiment of that id has its name. */
  private static boolean holds(OptserveClient direct, Experiment made) {
    try {
      return direct.getExperiment(made.getId()).getName().equals(made.getName());
    } catch (OptserveException e) {
      assertEquals(Status.Code.NOT_FOUND, e.getCode());
      return false;
    }
  }

  @Test
  void callsAreSpreadOverEveryServerAndSurviveOneGoingDown() throws Exception {
    // two servers with databases of their own: where each experiment lands shows the balancing
    OptserveServer a = OptserveServer.start();
    boolean aRunning = true;
    try (OptserveServer b = OptserveServer.start();
        OptserveClient onA = OptserveClient.connect(a.target());
        OptserveClient onB = OptserveClient.connect(b.target());
        OptserveClient both =
            OptserveClient.builder()
                .target(a.target() + "," + b.target())
                .deadline(Duration.ofSeconds(10))
                .build()) {
      List<Experiment> made = new ArrayList<>();
      for (int k = 0; k < 40; k++) {
        made.add(both.createExperiment(definition("rr-" + k)));
      }
      int onFirst = 0;
      int onSecond = 0;
      for (Experiment e : made) {
        onFirst += holds(onA, e) ? 1 : 0;
        onSecond += holds(onB, e) ? 1 : 0;
      }
      assertEquals(40, onFirst + onSecond);
      assertTrue(onFirst > 0 && onSecond > 0, onFirst + " on the first, " + onSecond);
      a.close();
      aRunning = false;
      for (int k = 0; k < 10; k++) {
        Experiment e = both.createExperiment(definition("after-" + k));
        assertTrue(holds(onB, e), e.getName());
      }
    } finally {
      if (aRunning) {
        a.close();
      }
    }
  }
}
