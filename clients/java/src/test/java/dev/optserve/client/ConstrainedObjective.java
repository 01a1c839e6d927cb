package dev.optserve.client;

/** A made-up objective over the constrained search space of the tests. */
final class ConstrainedObjective {
  private ConstrainedObjective() {}

  static double value(Assignments a) {
    double alpha = a.getDouble("alpha");
    double beta = a.getDouble("beta");
    long gamma = a.getInt("gamma");
    long theta = a.getInt("theta");
    return 2.0 - Math.pow(alpha - 0.6, 2) - Math.pow(beta - 0.3, 2) - 0.01 * Math.pow(gamma - 8, 2)
        - 0.01 * Math.pow(theta - 4, 2);
  }
}
