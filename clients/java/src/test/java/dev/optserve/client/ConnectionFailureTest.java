package dev.optserve.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A server that is down gives a clear error within the deadline, not a hang. */
class ConnectionFailureTest {
  private static int closedPort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }

  @Test
  @Timeout(30)
  void closedPortFailsFast() throws IOException {
    String target = "127.0.0.1:" + closedPort();
    Duration deadline = Duration.ofSeconds(5);
    try (OptserveClient client = OptserveClient.builder().target(target).deadline(deadline).build()) {
      long start = System.nanoTime();
      OptserveException e =
          assertThrows(OptserveException.class, () -> client.getExperiment("any"));
      Duration took = Duration.ofNanos(System.nanoTime() - start);
      assertTrue(
          Set.of(Status.Code.UNAVAILABLE, Status.Code.DEADLINE_EXCEEDED).contains(e.getCode()),
          "code " + e.getCode());
      assertTrue(took.compareTo(deadline.plusSeconds(2)) < 0, "took " + took);
      assertTrue(e.getMessage().contains(target), e.getMessage());
    }
  }

  @Test
  void defaultsComeFromTheEnvironmentOrLocalhost() {
    String env = System.getenv("OPTSERVE_TARGET");
    try (OptserveClient client = OptserveClient.connect()) {
      assertEquals(env == null || env.isEmpty() ? "localhost:50051" : env, client.target());
      assertEquals(Duration.ofSeconds(30), client.deadline());
    }
  }
}
