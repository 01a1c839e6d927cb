package dev.optserve.client;

import com.google.protobuf.Timestamp;
import dev.optserve.v1.Suggestion;
import dev.optserve.v1.SuggestionState;
import java.time.Instant;

/** Readers of a suggestion's lease. */
public final class Suggestions {
  private Suggestions() {}

  /**
   * When the open suggestion expires unless observed or renewed ({@link
   * OptserveClient#renewLease}); null when the server sent none.
   */
  public static Instant expireTime(Suggestion suggestion) {
    return suggestion.hasExpireTime() ? instant(suggestion.getExpireTime()) : null;
  }

  /** When the suggestion was created; null when the server sent none. */
  public static Instant createTime(Suggestion suggestion) {
    return suggestion.hasCreateTime() ? instant(suggestion.getCreateTime()) : null;
  }

  /**
   * Whether its lease ran out before an observation: it no longer counts as pending, and an
   * observation of it is still accepted.
   */
  public static boolean isExpired(Suggestion suggestion) {
    return suggestion.getState() == SuggestionState.SUGGESTION_STATE_EXPIRED;
  }

  private static Instant instant(Timestamp t) {
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
  }
}
