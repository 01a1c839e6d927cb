package dev.optserve.client;

import dev.optserve.v1.AssignmentValue;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/** The values a suggestion assigns, read by parameter name. */
public final class Assignments {
  private final Map<String, AssignmentValue> values;

  public Assignments(Map<String, AssignmentValue> values) {
    this.values = Collections.unmodifiableMap(new TreeMap<>(values));
  }

  /** Names of the assigned parameters and conditionals. */
  public Set<String> names() {
    return values.keySet();
  }

  public boolean contains(String name) {
    return values.containsKey(name);
  }

  /** A double parameter's value; an int parameter's value widened to double. */
  public double getDouble(String name) {
    AssignmentValue v = require(name);
    return switch (v.getKindCase()) {
      case DOUBLE_VALUE -> v.getDoubleValue();
      case INT_VALUE -> v.getIntValue();
      default -> throw new IllegalArgumentException(name + " is not numeric: " + describe(v));
    };
  }

  /** An int parameter's value. */
  public long getInt(String name) {
    AssignmentValue v = require(name);
    if (v.getKindCase() != AssignmentValue.KindCase.INT_VALUE) {
      throw new IllegalArgumentException(name + " is not an int: " + describe(v));
    }
    return v.getIntValue();
  }

  /** A categorical parameter's or a conditional's value. */
  public String getString(String name) {
    AssignmentValue v = require(name);
    if (v.getKindCase() != AssignmentValue.KindCase.STRING_VALUE) {
      throw new IllegalArgumentException(name + " is not a string: " + describe(v));
    }
    return v.getStringValue();
  }

  /** The raw protobuf values. */
  public Map<String, AssignmentValue> asProto() {
    return values;
  }

  /** Name to Double, Long or String. */
  public Map<String, Object> asMap() {
    Map<String, Object> out = new LinkedHashMap<>();
    values.forEach((k, v) -> out.put(k, unwrap(v)));
    return out;
  }

  @Override
  public String toString() {
    return asMap().toString();
  }

  private AssignmentValue require(String name) {
    AssignmentValue v = values.get(name);
    if (v == null) {
      throw new IllegalArgumentException("no assignment for " + name + " (have " + names() + ")");
    }
    return v;
  }

  private static Object unwrap(AssignmentValue v) {
    return switch (v.getKindCase()) {
      case DOUBLE_VALUE -> v.getDoubleValue();
      case INT_VALUE -> v.getIntValue();
      case STRING_VALUE -> v.getStringValue();
      case KIND_NOT_SET -> null;
    };
  }

  private static String describe(AssignmentValue v) {
    return String.valueOf(unwrap(v));
  }
}
