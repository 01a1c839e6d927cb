package dev.optserve.client;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * PEM files made with the openssl command line: a throw-away CA, a server certificate for {@code
 * localhost} (no IP address: connecting to 127.0.0.1 needs {@code tlsServerName("localhost")}), a
 * client certificate, and a second CA that signed neither. Keys are PKCS#8, as Java reads them.
 */
record TestCertificates(
    Path ca, Path serverCert, Path serverKey, Path clientCert, Path clientKey, Path otherCa) {

  static TestCertificates make(Path dir) throws IOException, InterruptedException {
    selfSigned(dir, "ca", "optserve test CA");
    selfSigned(dir, "other", "another CA");
    signed(dir, "server", "localhost", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n");
    signed(dir, "client", "optserve test client", "extendedKeyUsage=clientAuth\n");
    return new TestCertificates(
        dir.resolve("ca.pem"),
        dir.resolve("server.pem"),
        dir.resolve("server.key"),
        dir.resolve("client.pem"),
        dir.resolve("client.key"),
        dir.resolve("other.pem"));
  }

  private static void selfSigned(Path dir, String name, String cn)
      throws IOException, InterruptedException {
    openssl(dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
        "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  }

  private static void signed(Path dir, String name, String cn, String extensions)
      throws IOException, InterruptedException {
    openssl(dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn);
    Files.writeString(dir.resolve(name + ".ext"), extensions);
    openssl(dir, "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext");
  }

  private static void openssl(Path dir, String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of("openssl"));
    command.addAll(List.of(args));
    Process p;
    try {
      p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    } catch (IOException e) {
      throw new IllegalStateException(
          "the TLS tests make their certificates with openssl, which could not be run", e);
    }
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IllegalStateException(String.join(" ", command) + " failed:\n" + output);
    }
  }
}
