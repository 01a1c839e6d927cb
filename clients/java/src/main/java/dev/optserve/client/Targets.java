package dev.optserve.client;

import io.grpc.Attributes;
import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.NameResolverProvider;
import io.grpc.NameResolverRegistry;
import io.grpc.Status;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;

/**
 * Several servers behind one client: a comma-separated list of {@code host:port} (e.g. {@code
 * OPTSERVE_TARGET=10.0.0.5:50051,10.0.0.6:50051}) becomes one gRPC target whose addresses the
 * channel balances round-robin. grpc-java has no {@code ipv4:} scheme, so the list is resolved by
 * a name resolver of this client (scheme {@value #SCHEME}), each name again on every refresh.
 * Anything else ({@code host:port}, {@code dns:///name:port}, ...) is gRPC's own syntax.
 */
final class Targets {
  static final String SCHEME = "optserve-list";

  private static final Provider PROVIDER = new Provider();

  static {
    NameResolverRegistry.getDefaultRegistry().register(PROVIDER);
  }

  private Targets() {}

  /** The gRPC target of {@code target}. Throws IllegalArgumentException for a malformed list. */
  static String channelTarget(String target) {
    if (!target.contains(",") || target.contains(":///") || target.startsWith("unix:")) {
      return target;
    }
    List<HostPort> entries = parse(target);
    StringBuilder path = new StringBuilder();
    for (HostPort e : entries) {
      if (path.length() > 0) {
        path.append(',');
      }
      // '[' and ']' are not allowed in a URI path; URI.getPath() decodes them again
      path.append(e.host.contains(":") ? "%5B" + e.host + "%5D" : e.host).append(':').append(e.port);
    }
    return SCHEME + ":///" + path;
  }

  static List<HostPort> parse(String list) {
    List<HostPort> entries = new ArrayList<>();
    for (String raw : list.split(",")) {
      String entry = raw.trim();
      if (!entry.isEmpty()) {
        entries.add(HostPort.parse(entry));
      }
    }
    if (entries.isEmpty()) {
      throw new IllegalArgumentException("target '" + list + "' names no server");
    }
    return entries;
  }

  record HostPort(String host, int port) {
    static HostPort parse(String entry) {
      int colon = entry.lastIndexOf(':');
      String host = colon > 0 ? entry.substring(0, colon) : "";
      String port = colon > 0 ? entry.substring(colon + 1) : "";
      if (host.startsWith("[") && host.endsWith("]")) {
        host = host.substring(1, host.length() - 1);
      }
      int number;
      try {
        number = Integer.parseInt(port);
      } catch (NumberFormatException e) {
        number = -1;
      }
      if (host.isEmpty() || number < 1 || number > 65535) {
        throw new IllegalArgumentException(
            "target '" + entry + "': each of several targets is host:port");
      }
      return new HostPort(host, number);
    }
  }

  private static final class Provider extends NameResolverProvider {
    @Override
    protected boolean isAvailable() {
      return true;
    }

    @Override
    protected int priority() {
      return 5;
    }

    @Override
    public String getDefaultScheme() {
      return SCHEME;
    }

    @Override
    public Collection<Class<? extends SocketAddress>> getProducedSocketAddressTypes() {
      return Set.of(InetSocketAddress.class);
    }

    @Override
    public NameResolver newNameResolver(URI targetUri, NameResolver.Args args) {
      if (!SCHEME.equals(targetUri.getScheme())) {
        return null;
      }
      return new ListResolver(parse(targetUri.getPath().substring(1)));
    }
  }

  /** Resolves every entry of the list; each address gets its own subchannel. */
  private static final class ListResolver extends NameResolver {
    private final List<HostPort> entries;
    private Listener2 listener;

    ListResolver(List<HostPort> entries) {
      this.entries = entries;
    }

    @Override
    public String getServiceAuthority() {
      HostPort first = entries.get(0);
      return first.host.contains(":") ? "[" + first.host + "]" : first.host;
    }

    @Override
    public void start(Listener2 listener) {
      this.listener = listener;
      resolve();
    }

    @Override
    public void refresh() {
      resolve();
    }

    private void resolve() {
      List<EquivalentAddressGroup> groups = new ArrayList<>();
      for (HostPort e : entries) {
        try {
          for (InetAddress address : InetAddress.getAllByName(e.host)) {
            groups.add(new EquivalentAddressGroup(new InetSocketAddress(address, e.port)));
          }
        } catch (UnknownHostException ex) {
          // the others still serve; a name that does not resolve is skipped until a refresh
        }
      }
      if (groups.isEmpty()) {
        listener.onError(
            Status.UNAVAILABLE.withDescription("no address for any of " + entries));
        return;
      }
      listener.onResult(
          ResolutionResult.newBuilder().setAddresses(groups).setAttributes(Attributes.EMPTY).build());
    }

    @Override
    public void shutdown() {}
  }
}
