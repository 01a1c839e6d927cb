package dev.optserve.client;

import dev.optserve.v1.AssignmentValue;
import dev.optserve.v1.BetaPrior;
import dev.optserve.v1.Bounds;
import dev.optserve.v1.NormalPrior;
import dev.optserve.v1.Parameter;
import dev.optserve.v1.ParameterType;
import dev.optserve.v1.Prior;
import dev.optserve.v1.Transformation;
import java.util.List;

/** Factories for the parameters of a search space. */
public final class Parameters {
  private Parameters() {}

  /** A real parameter in [min, max]. */
  public static Parameter doubleParam(String name, double min, double max) {
    return numeric(name, ParameterType.PARAMETER_TYPE_DOUBLE, min, max);
  }

  /** A real parameter in [min, max] searched on a log scale (min > 0). */
  public static Parameter logDoubleParam(String name, double min, double max) {
    return doubleParam(name, min, max).toBuilder()
        .setTransformation(Transformation.TRANSFORMATION_LOG)
        .build();
  }

  /** An integer parameter in [min, max], both inclusive. */
  public static Parameter intParam(String name, long min, long max) {
    return numeric(name, ParameterType.PARAMETER_TYPE_INT, min, max);
  }

  /** A categorical parameter taking one of {@code values}. */
  public static Parameter categoricalParam(String name, String... values) {
    return Parameter.newBuilder()
        .setName(name)
        .setType(ParameterType.PARAMETER_TYPE_CATEGORICAL)
        .addAllCategoricalValues(List.of(values))
        .build();
  }

  /** A normal prior in the parameter's units: mean within its bounds, scale &gt; 0. */
  public static Prior normalPrior(double mean, double scale) {
    return Prior.newBuilder()
        .setNormal(NormalPrior.newBuilder().setMean(mean).setScale(scale))
        .build();
  }

  /** A beta prior over the parameter's bounds scaled to [0, 1]; both shapes &gt; 0. */
  public static Prior betaPrior(double shapeA, double shapeB) {
    return Prior.newBuilder()
        .setBeta(BetaPrior.newBuilder().setShapeA(shapeA).setShapeB(shapeB))
        .build();
  }

  /**
   * {@code parameter} with a prior belief about its good values (double parameters without a log
   * transformation or a grid): {@code withPrior(doubleParam("lr", 0, 1), normalPrior(0.3, 0.1))}.
   */
  public static Parameter withPrior(Parameter parameter, Prior prior) {
    return parameter.toBuilder().setPrior(prior).build();
  }

  /** {@code parameter} with a default value (a double parameter's). */
  public static Parameter withDefault(Parameter parameter, double value) {
    return withDefault(parameter, AssignmentValue.newBuilder().setDoubleValue(value).build());
  }

  /** {@code parameter} with a default value (an int parameter's). */
  public static Parameter withDefault(Parameter parameter, long value) {
    return withDefault(parameter, AssignmentValue.newBuilder().setIntValue(value).build());
  }

  /** {@code parameter} with a default value (a categorical parameter's). */
  public static Parameter withDefault(Parameter parameter, String value) {
    return withDefault(parameter, AssignmentValue.newBuilder().setStringValue(value).build());
  }

  /** {@code parameter} with a default value. */
  public static Parameter withDefault(Parameter parameter, AssignmentValue value) {
    return parameter.toBuilder().setDefaultValue(value).build();
  }

  private static Parameter numeric(String name, ParameterType type, double min, double max) {
    return Parameter.newBuilder()
        .setName(name)
        .setType(type)
        .setBounds(Bounds.newBuilder().setMin(min).setMax(max))
        .build();
  }
}
