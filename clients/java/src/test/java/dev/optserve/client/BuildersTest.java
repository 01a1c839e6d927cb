package dev.optserve.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.optserve.v1.AssignmentValue;
import dev.optserve.v1.Experiment;
import dev.optserve.v1.LinearConstraint;
import dev.optserve.v1.LinearConstraintType;
import dev.optserve.v1.Metric;
import dev.optserve.v1.MetricObjective;
import dev.optserve.v1.MetricStrategy;
import dev.optserve.v1.MetricValue;
import dev.optserve.v1.Observation;
import dev.optserve.v1.ParameterType;
import java.util.Map;
import org.junit.jupiter.api.Test;

class BuildersTest {
  @Test
  void experimentBuilderFillsTheProto() {
    Experiment e =
        Experiments.builder()
            .name("x")
            .parameter(Parameters.doubleParam("alpha", 0, 1))
            .intParam("gamma", 0, 10)
            .categoricalParam("c", "a", "b")
            .linearConstraint(Constraints.sum().term("alpha", 1).term("beta", 1).lessThan(1))
            .metric(Metrics.minimize("loss"))
            .budget(30)
            .parallelBandwidth(2)
            .seed(7)
            .build();
    assertEquals("x", e.getName());
    assertEquals(3, e.getParametersCount());
    assertEquals(ParameterType.PARAMETER_TYPE_INT, e.getParameters(1).getType());
    assertEquals(10.0, e.getParameters(1).getBounds().getMax());
    assertEquals(2, e.getParameters(2).getCategoricalValuesCount());
    assertEquals(MetricObjective.METRIC_OBJECTIVE_MINIMIZE, e.getMetrics(0).getObjective());
    assertEquals(30, e.getObservationBudget());
    assertEquals(2, e.getParallelBandwidth());
    assertEquals(7L, e.getSeed());
  }

  @Test
  void metricShortcutsSetStrategyObjectiveAndThreshold() {
    Metric plain = Metrics.maximize("a");
    assertFalse(plain.hasThreshold());
    assertEquals(MetricStrategy.METRIC_STRATEGY_OPTIMIZE, plain.getStrategy());
    Metric bounded = Metrics.minimize("b", 0.25);
    assertEquals(MetricObjective.METRIC_OBJECTIVE_MINIMIZE, bounded.getObjective());
    assertEquals(0.25, bounded.getThreshold());
    assertEquals(2.0, Metrics.maximize("c", 2).getThreshold());

    Metric atMost = Metrics.atMost("latency", 50);
    assertEquals(MetricStrategy.METRIC_STRATEGY_CONSTRAINT, atMost.getStrategy());
    assertEquals(MetricObjective.METRIC_OBJECTIVE_MINIMIZE, atMost.getObjective());
    assertEquals(50.0, atMost.getThreshold());
    Metric atLeast = Metrics.atLeast("recall", 0.9);
    assertEquals(MetricObjective.METRIC_OBJECTIVE_MAXIMIZE, atLeast.getObjective());
    assertEquals(
        atLeast,
        Metrics.constraint("recall", MetricObjective.METRIC_OBJECTIVE_MAXIMIZE, 0.9));

    Metric stored = Metrics.stored("epochs");
    assertEquals(MetricStrategy.METRIC_STRATEGY_STORE, stored.getStrategy());
    assertFalse(stored.hasThreshold());

    assertEquals(3, Experiments.builder().numSolutions(3).build().getNumSolutions());
  }

  @Test
  void observationValuesByName() {
    Observation o =
        Observation.newBuilder()
            .setId("7")
            .addValues(MetricValue.newBuilder().setName("f").setValue(1.5))
            .addValues(MetricValue.newBuilder().setName("g").setValue(-2))
            .build();
    assertEquals(1.5, Observations.value(o, "f"));
    assertEquals(Map.of("f", 1.5, "g", -2.0), Observations.values(o));
    assertThrows(IllegalArgumentException.class, () -> Observations.value(o, "h"));
  }

  @Test
  void constraintSumIsReusable() {
    Constraints.Sum sum = Constraints.sum().term("gamma", 3).term("theta", -5);
    LinearConstraint ge = sum.greaterThan(0);
    LinearConstraint le = sum.lessThan(4);
    assertEquals(LinearConstraintType.LINEAR_CONSTRAINT_TYPE_GREATER_THAN, ge.getType());
    assertEquals(LinearConstraintType.LINEAR_CONSTRAINT_TYPE_LESS_THAN, le.getType());
    assertEquals(2, ge.getTermsCount());
    assertEquals(-5.0, le.getTerms(1).getWeight());
    assertEquals(4.0, le.getThreshold());
  }

  @Test
  void assignmentsReadByType() {
    Assignments a =
        new Assignments(
            Map.of(
                "alpha", AssignmentValue.newBuilder().setDoubleValue(0.5).build(),
                "gamma", AssignmentValue.newBuilder().setIntValue(3).build(),
                "c", AssignmentValue.newBuilder().setStringValue("a").build()));
    assertEquals(0.5, a.getDouble("alpha"));
    assertEquals(3L, a.getInt("gamma"));
    assertEquals(3.0, a.getDouble("gamma"));
    assertEquals("a", a.getString("c"));
    assertThrows(IllegalArgumentException.class, () -> a.getInt("alpha"));
    assertThrows(IllegalArgumentException.class, () -> a.getDouble("missing"));
    assertFalse(a.contains("missing"));
  }
}
