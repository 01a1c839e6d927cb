package dev.optserve.client;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real optserve server on a loopback port with a throw-away database, for tests.
 *
 * <p>The executable is the system property {@code optserve.bin}, else the environment variable
 * {@code OPTSERVE_BIN}, else {@code ../../.venv/bin/optserve} (from clients/java, where Maven runs
 * the tests). The service code is this checkout's ({@code ../../service} goes first on {@code
 * PYTHONPATH}), so the tests run against the server of the same tree whatever the executable's
 * environment has installed. Its stderr goes to {@code target/optserve-server.log}.
 */
final class OptserveServer implements AutoCloseable {
  private static final Pattern READY = Pattern.compile("optserve listening on (\\S+):(\\d+)");
  private static final long START_TIMEOUT_SECONDS = 60;

  private final Process process;
  private final Path dir;
  private final Path log;
  private final String target;

  private OptserveServer(Process process, Path dir, Path log, String target) {
    this.process = process;
    this.dir = dir;
    this.log = log;
    this.target = target;
  }

  static Path executable() {
    String bin = System.getProperty("optserve.bin");
    if (bin == null || bin.isEmpty()) {
      bin = System.getenv("OPTSERVE_BIN");
    }
    if (bin == null || bin.isEmpty()) {
      bin = "../../.venv/bin/optserve";
    }
    return Paths.get(bin).toAbsolutePath().normalize();
  }

  /** Starts {@code optserve serve} on a free loopback port with {@code extraArgs} appended. */
  static OptserveServer start(String... extraArgs) throws IOException, InterruptedException {
    return start(Map.of(), extraArgs);
  }

  /** The output of {@code optserve serve --help}: which options this server has. */
  static String serveHelp() throws IOException, InterruptedException {
    ProcessBuilder pb = new ProcessBuilder(executable().toString(), "serve", "--help");
    pb.redirectErrorStream(true);
    withServiceOnPath(pb);
    Process process = pb.start();
    String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    process.waitFor(60, TimeUnit.SECONDS);
    return out;
  }

  private static void withServiceOnPath(ProcessBuilder pb) {
    Path service = Paths.get("../../service").toAbsolutePath().normalize();
    if (Files.isDirectory(service.resolve("optserve"))) {
      String inherited = pb.environment().get("PYTHONPATH");
      pb.environment()
          .put(
              "PYTHONPATH",
              inherited == null || inherited.isEmpty()
                  ? service.toString()
                  : service + File.pathSeparator + inherited);
    }
  }

  /**
   * Starts {@code optserve serve} on a free loopback port with {@code env} added to its
   * environment and {@code extraArgs} appended.
   */
  static OptserveServer start(Map<String, String> env, String... extraArgs)
      throws IOException, InterruptedException {
    Path bin = executable();
    if (!Files.isExecutable(bin)) {
      throw new IllegalStateException(
          "no optserve executable at "
              + bin
              + " (run `make setup` at the repo root, or set OPTSERVE_BIN / -Doptserve.bin)");
    }
    Path dir = Files.createTempDirectory("optserve-java-test");
    Path log = Paths.get("target", "optserve-server.log").toAbsolutePath();
    Files.createDirectories(log.getParent());
    List<String> command = new ArrayList<>();
    command.addAll(
        List.of(
            bin.toString(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--db",
            dir.resolve("optserve.db").toString()));
    command.addAll(Arrays.asList(extraArgs));
    ProcessBuilder pb =
        new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()));
    withServiceOnPath(pb);
    pb.environment().putAll(env);
    Process process = pb.start();
    BufferedReader stdout =
        new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    CompletableFuture<String> ready =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                for (String line; (line = stdout.readLine()) != null; ) {
                  Matcher m = READY.matcher(line);
                  if (m.find()) {
                    return m.group(1) + ":" + m.group(2);
                  }
                }
                return null;
              } catch (IOException e) {
                return null;
              }
            });
    String target;
    try {
      target = ready.get(START_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    } catch (ExecutionException | TimeoutException e) {
      target = null;
    }
    if (target == null) {
      process.destroyForcibly();
      throw new IllegalStateException(
          "optserve did not report its port within "
              + START_TIMEOUT_SECONDS
              + " s; see "
              + log);
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    Thread drain =
        new Thread(
            () -> {
              try {
                while (stdout.readLine() != null) {
                  // discard
                }
              } catch (IOException ignored) {
                // the process ended
              }
            },
            "optserve-stdout");
    drain.setDaemon(true);
    drain.start();
    return new OptserveServer(process, dir, log, target);
  }

  /** host:port to connect to. */
  String target() {
    return target;
  }

  Path log() {
    return log;
  }

  /** Stops the server with SIGTERM (forcibly after 10 s) and deletes its database. */
  @Override
  public void close() throws IOException, InterruptedException {
    process.destroy();
    if (!process.waitFor(10, TimeUnit.SECONDS)) {
      process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
    }
    try (var files = Files.walk(dir)) {
      files.sorted((a, b) -> b.compareTo(a)).forEach(p -> p.toFile().delete());
    }
  }
}
