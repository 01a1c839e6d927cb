"""Every size and count limit of the service, in one place.

Where SigOpt had a limit (``reference/sigopt_rest_api.md`` §3) it is kept;
the others are chosen so that no accepted request costs unbounded CPU or
memory, and no response can pass gRPC's default 4 MiB message limit. A broken
limit is an INVALID_ARGUMENT naming the field and the limit.

String lengths count characters (code points), as SigOpt did; sizes in bytes
below assume the worst case of 4 UTF-8 bytes per character.
"""

from __future__ import annotations

# ---------------------------------------------------------------- SigOpt's limits

# Names of experiments, parameters, conditionals and metrics.
MAX_NAME_LENGTH = 100
# Each categorical value and each conditional value.
MAX_CATEGORICAL_VALUE_LENGTH = 50
# Metadata of experiments, suggestions and observations: string keys, and values
# that are strings, finite numbers or null (no booleans, lists or nested objects).
MAX_METADATA_KEYS = 100
MAX_METADATA_KEY_LENGTH = 100
MAX_METADATA_STRING_LENGTH = 500
MAX_METRICS = 50
MAX_OPTIMIZED_METRICS = 2
MAX_CONSTRAINT_METRICS = 4
# An experiment with conditionals has at most this many parameters.
MAX_CONDITIONAL_PARAMETERS = 20
# Distinct int parameters across all linear constraints (MILP feasibility stays cheap).
MAX_CONSTRAINED_INT_PARAMETERS = 10
# Narrowest bounds of a numeric parameter (SigOpt's MINIMUM_DOMAIN_EDGE_LENGTH).
MIN_BOUNDS_WIDTH = 1e-8
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

# ---------------------------------------------------------------- chosen here

# Project names: 1-100 of the characters SigOpt's client keeps in a project id.
MAX_PROJECT_LENGTH = 100
PROJECT_PATTERN = r"[a-z0-9._-]+"
MAX_PARAMETERS = 100
# Values of one categorical parameter: each is a column of the model's input,
# and 100,000 of them made one suggestion take 20 s of CPU.
MAX_CATEGORICAL_VALUES = 100
# Columns of the model's input: one per double or int parameter, one per value
# of each categorical parameter and of each conditional. Time and memory of a
# suggestion grow with columns x pending points; at 200 columns, CreateSuggestions
# of 100 takes about 45 s of CPU and stays under 500 MB.
MAX_SPACE_DIMENSIONS = 200
MAX_CONDITIONALS = 10
MAX_CONDITIONAL_VALUES = 20
# Combinations of conditional values: each must activate a parameter, and all are checked.
MAX_CONDITIONAL_COMBINATIONS = 10_000
MAX_LINEAR_CONSTRAINTS = 100
# Values of one parameter's explicit grid.
MAX_GRID_VALUES = 1000
# Points of a grid experiment (the cartesian product of the grids).
MAX_GRID_SIZE = 100_000
# Bounds and grid values lie within +-2^52: beyond 2^53 a double no longer holds
# every integer, and the integer sampler keeps differences of bounds exact (up
# to 2^53) only within +-2^52; widths (max - min) and weighted sums in
# constraints then stay far from overflowing.
MAX_ABS_PARAMETER_VALUE = float(2**52)
# Linear constraint weights, in absolute value: large enough for any change of
# units, small enough that weight x value x parameters stays finite.
MAX_ABS_CONSTRAINT_WEIGHT = 1e15
MAX_PARALLEL_BANDWIDTH = 1000
MAX_SUGGESTIONS_PER_CALL = 100
# Observations of one batch create (SigOpt's observations/batch).
MAX_OBSERVATIONS_PER_BATCH = 2500
# Checkpoints of one training run (SigOpt's limit).
MAX_CHECKPOINTS_PER_RUN = 200
# Content of one training-run log stream (SigOpt's; its client truncates at 1024).
MAX_RUN_LOG_LENGTH = 1124

# ---------------------------------------------------------------- chosen here, continued

# Queued suggestions waiting in one experiment (each is served before the optimizer's).
MAX_QUEUED_SUGGESTIONS = 1000
# Metric values of one training run or checkpoint.
MAX_RUN_VALUES = 100
# A training run's free-form documents (logs, datasets, model, source code,
# sys/dev metadata, tags), as JSON.
MAX_RUN_EXTRAS_BYTES = 256 * 1024
# Body of one HTTP request (a batch of 2,500 observations with metadata fits).
MAX_HTTP_BODY_BYTES = 16 * 1024 * 1024
# Nesting of an HTTP JSON body: protobuf's decoders stop at 100 levels, and a
# stored Struct takes two of them per JSON level, so deeper data stored over HTTP
# could not be read back over gRPC.
MAX_JSON_DEPTH = 32

# ---------------------------------------------------------------- leases, retries, tokens

# An open suggestion neither observed nor renewed for this long expires (the
# default; an experiment or a call may set 1 s to 30 days).
DEFAULT_SUGGESTION_LEASE_SECONDS = 24 * 3600
MAX_SUGGESTION_LEASE_SECONDS = 30 * 24 * 3600
# Idempotency keys of mutating requests (a UUID fits).
REQUEST_ID_PATTERN = r"[A-Za-z0-9._:-]{1,64}"
MAX_TOKEN_NAME_LENGTH = 100
MAX_TOKEN_PROJECTS = 100

# ---------------------------------------------------------------- message sizes

# gRPC's default limit on a received message, which clients keep unless told.
GRPC_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# The search space of an experiment (its parameters, conditionals, linear
# constraints and metrics), serialized as protobuf.
MAX_SEARCH_SPACE_BYTES = 256 * 1024
# The largest assignments an experiment's suggestion can carry: every parameter
# and conditional name with its longest value, plus 16 bytes each. 100
# parameters with ASCII names of 100 characters and values of 50 fit.
MAX_ASSIGNMENTS_BYTES = 20 * 1024
# Metadata of CreateSuggestions is stored on each suggestion: count x its size.
MAX_SUGGESTIONS_METADATA_BYTES = 1024 * 1024
# Pages of list calls and the observations of GetBestAssignments stop before
# passing this size (a page may hold fewer items than page_size).
MAX_RESPONSE_BYTES = 3 * 1024 * 1024

# Worst cases these limits allow, as protobuf (tests/service_tests/test_limits.py
# builds each and checks it arrives; measured sizes in brackets):
#   metadata: 100 x (400 B key + 2,000 B value + 12)            ~ 235 KiB [240,300 B]
#   suggestion: assignments 20 KiB + metadata 235 KiB + 100       ~ 256 KiB
#   observation: assignments 20 KiB + 50 values x ~424 B
#     + metadata 235 KiB + 100                                    ~ 276 KiB [280,052 B]
#   experiment: search space 256 KiB + name and project 1 KiB
#     + metadata 235 KiB + best, first and last observations
#     3 x 276 KiB                                                 ~ 1.3 MiB [1,344,311 B]
#   CreateSuggestions: 100 x (20 KiB + 100 B) + 1 MiB metadata    ~ 3.0 MiB [2,951,563 B
#     with 10 KiB of metadata each]
#   ListExperiments / ListSuggestions / ListObservations / GetBestAssignments:
#     at most MAX_RESPONSE_BYTES                                  = 3.0 MiB
# so every response stays below GRPC_MAX_MESSAGE_BYTES (4 MiB).

# Ids are decimal integers in SQLite's signed 64-bit range.
MAX_ID = 2**63 - 1
