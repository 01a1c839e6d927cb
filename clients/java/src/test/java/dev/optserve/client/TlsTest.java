package dev.optserve.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.optserve.v1.Experiment;
import io.grpc.Status;
import io.grpc.TlsServerCredentials;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** TLS and mutual TLS, against real gRPC servers in the test process with a CA made for the run. */
@Timeout(60)
class TlsTest {
  @TempDir static Path dir;
  private static TestCertificates certs;
  private static ScriptedServer tls;
  private static ScriptedServer mtls;

  @BeforeAll
  static void start() throws Exception {
    certs = TestCertificates.make(dir);
    tls =
        new ScriptedServer(
            TlsServerCredentials.newBuilder()
                .keyManager(certs.serverCert().toFile(), certs.serverKey().toFile())
                .build());
    mtls =
        new ScriptedServer(
            TlsServerCredentials.newBuilder()
                .keyManager(certs.serverCert().toFile(), certs.serverKey().toFile())
                .trustManager(certs.ca().toFile())
                .clientAuth(TlsServerCredentials.ClientAuth.REQUIRE)
                .build());
  }

  @AfterAll
  static void stop() throws Exception {
    tls.close();
    mtls.close();
  }

  private static OptserveClient.Builder builder(ScriptedServer server, Map<String, String> env) {
    return OptserveClient.builder()
        .target(server.target())
        .deadline(Duration.ofSeconds(10))
        .retryPolicy(RetryPolicy.never())
        .environment(env::get);
  }

  private static OptserveClient.Builder builder(ScriptedServer server) {
    return builder(server, Map.of()).tlsServerName("localhost");
  }

  /** The peer the server saw for one GetExperiment. */
  private static String peer(ScriptedServer server, OptserveClient.Builder builder) {
    server.reset();
    try (OptserveClient client = builder.build()) {
      assertEquals("fake", client.getExperiment("7").getName());
      assertTrue(client.isTls());
    }
    List<ScriptedServer.Seen> seen = server.calls("GetExperiment");
    assertEquals(1, seen.size());
    return seen.get(0).peer();
  }

  private static void refused(OptserveClient.Builder builder) {
    try (OptserveClient client = builder.build()) {
      OptserveException e =
          assertThrows(OptserveException.class, () -> client.getExperiment("7"));
      assertEquals(Status.Code.UNAVAILABLE, e.getCode(), e.getMessage());
    }
  }

  @Test
  void tlsWithTheTestCa() {
    assertEquals("tls", peer(tls, builder(tls).tlsCa(certs.ca())));
  }

  @Test
  void theServerCertificateIsVerified() {
    refused(builder(tls).tlsCa(certs.otherCa()));
    // The certificate names localhost, not 127.0.0.1.
    refused(builder(tls, Map.of()).tlsCa(certs.ca()));
    // A plaintext client cannot talk to a TLS server.
    refused(builder(tls));
  }

  @Test
  void mutualTls() {
    String peer =
        peer(
            mtls,
            builder(mtls).tlsCa(certs.ca()).tlsClientCertificate(certs.clientCert(), certs.clientKey()));
    assertEquals("tls:CN=optserve test client", peer);
    refused(builder(mtls).tlsCa(certs.ca()));
  }

  @Test
  void tlsFromTheEnvironment() {
    Map<String, String> env = new HashMap<>();
    env.put("OPTSERVE_TLS_CA", certs.ca().toString());
    env.put("OPTSERVE_TLS_CERT", certs.clientCert().toString());
    env.put("OPTSERVE_TLS_KEY", certs.clientKey().toString());
    env.put("OPTSERVE_TLS_SERVER_NAME", "localhost");
    assertEquals("tls:CN=optserve test client", peer(mtls, builder(mtls, env)));
    // An explicit tls(false) wins over the environment's certificates, and so does OPTSERVE_TLS=0.
    try (OptserveClient client = builder(mtls, env).tls(false).build()) {
      assertFalse(client.isTls());
    }
    env.put("OPTSERVE_TLS", "0");
    try (OptserveClient client = builder(mtls, env).build()) {
      assertFalse(client.isTls());
    }
  }

  @Test
  void tlsFlagAloneUsesTheJvmRoots() {
    try (OptserveClient client = builder(tls, Map.of("OPTSERVE_TLS", "1")).build()) {
      assertTrue(client.isTls());
    }
    // The JVM's roots do not know the test CA.
    refused(builder(tls).tls(true));
  }

  @Test
  void tlsOptionsAreCheckedBeforeConnecting() {
    Map<String, String> certOnly = Map.of("OPTSERVE_TLS_CERT", certs.clientCert().toString());
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> builder(tls, certOnly).build());
    assertTrue(e.getMessage().contains("private key"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> builder(tls).tlsCa(dir.resolve("missing.pem")).build());
    assertTrue(e.getMessage().contains("missing.pem"), e.getMessage());
    assertThrows(
        IllegalArgumentException.class, () -> builder(tls).tls(false).tlsCa(certs.ca()).build());
    assertThrows(
        IllegalArgumentException.class,
        () -> builder(tls, Map.of("OPTSERVE_TLS", "maybe")).build());
  }

  @Test
  void theRealServerOverMutualTls() throws Exception {
    Assumptions.assumeTrue(
        OptserveServer.serveHelp().contains("--tls-cert"), "this server has no --tls-cert");
    String token = "tls-test-token";
    try (OptserveServer server =
        OptserveServer.start(
            Map.of("OPTSERVE_SERVER_TOKEN", token),
            "--tls-cert", certs.serverCert().toString(),
            "--tls-key", certs.serverKey().toString(),
            "--tls-client-ca", certs.ca().toString())) {
      OptserveClient.Builder mtlsClient =
          OptserveClient.builder()
              .target(server.target())
              .environment(name -> null)
              .tlsCa(certs.ca())
              .tlsServerName("localhost")
              .tlsClientCertificate(certs.clientCert(), certs.clientKey());
      String id;
      try (OptserveClient client = mtlsClient.token(token).build()) {
        Experiment created =
            client.createExperiment(
                Experiments.builder()
                    .name("over TLS")
                    .doubleParam("x", 0, 1)
                    .metric(Metrics.maximize("m"))
                    .build());
        id = created.getId();
        client.observe(id, client.createSuggestion(id).getId(), "m", 1.0);
        assertEquals(1, client.getExperiment(id).getProgress().getObservationCount());
      }
      try (OptserveClient client =
          mtlsClient.token("wrong").retryPolicy(RetryPolicy.never()).build()) {
        OptserveException e = assertThrows(OptserveException.class, () -> client.getExperiment(id));
        assertEquals(Status.Code.UNAUTHENTICATED, e.getCode());
      }
      // Without a client certificate, or without TLS, no call gets through.
      refused(
          OptserveClient.builder()
              .target(server.target())
              .token(token)
              .environment(name -> null)
              .retryPolicy(RetryPolicy.never())
              .tlsCa(certs.ca())
              .tlsServerName("localhost"));
      refused(
          OptserveClient.builder()
              .target(server.target())
              .token(token)
              .environment(name -> null)
              .retryPolicy(RetryPolicy.never()));
    }
  }
}
