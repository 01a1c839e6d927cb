package dev.optserve.client;

import dev.optserve.v1.Bounds;
import dev.optserve.v1.Parameter;
import dev.optserve.v1.ParameterType;
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

  private static Parameter numeric(String name, ParameterType type, double min, double max) {
    return Parameter.newBuilder()
        .setName(name)
        .setType(type)
        .setBounds(Bounds.newBuilder().setMin(min).setMax(max))
        .build();
  }
}
