/*
 * wire.h - the pieces of gRPC's PROTOCOL-HTTP2 that are plain data: status
 * codes, the grpc-timeout header, the grpc-message percent-encoding, the
 * mapping of HTTP and RST_STREAM codes to statuses, and the 5-byte
 * length-prefixed message framing. No I/O here, so all of it is unit-tested
 * byte by byte (tests/unit/test_rpc_wire.c) and fuzzed.
 */
#ifndef SONDE_RPC_WIRE_H
#define SONDE_RPC_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum rpc_code {
    RPC_OK = 0,
    RPC_CANCELLED = 1,
    RPC_UNKNOWN = 2,
    RPC_INVALID_ARGUMENT = 3,
    RPC_DEADLINE_EXCEEDED = 4,
    RPC_NOT_FOUND = 5,
    RPC_ALREADY_EXISTS = 6,
    RPC_PERMISSION_DENIED = 7,
    RPC_RESOURCE_EXHAUSTED = 8,
    RPC_FAILED_PRECONDITION = 9,
    RPC_ABORTED = 10,
    RPC_OUT_OF_RANGE = 11,
    RPC_UNIMPLEMENTED = 12,
    RPC_INTERNAL = 13,
    RPC_UNAVAILABLE = 14,
    RPC_DATA_LOSS = 15,
    RPC_UNAUTHENTICATED = 16,
    RPC_CODE__COUNT
};

#define RPC_PREFIX_LEN  5                  /* compressed flag + 32-bit length */
#define RPC_MESSAGE_MAX (4u * 1024 * 1024) /* default largest message, as grpc's */
#define RPC_STATUS_MAX  256                /* longest grpc-message we keep, bytes */

/* "DEADLINE_EXCEEDED"; "UNKNOWN" for anything out of range. */
const char *rpc_code_name(int code);

/*
 * grpc-timeout: "1*8DIGIT unit" with unit one of H M S m u n. Returns the
 * value in milliseconds, rounded up (a 1 ns deadline is still a deadline),
 * or -1 when the value is malformed.
 */
int64_t rpc_timeout_parse(const char *s, size_t len);
/* Format ms as a grpc-timeout value (at most 8 digits, coarser unit when
 * needed); out needs 10 bytes. */
void rpc_timeout_format(uint64_t ms, char out[10]);

/*
 * grpc-message is percent-encoded: bytes outside 0x20-0x7e and '%' become
 * %XX. Both functions write a NUL-terminated string of at most cap-1 bytes
 * and return its length; decoding leaves a malformed %-sequence as it is.
 */
size_t rpc_message_encode(const char *in, char *out, size_t cap);
size_t rpc_message_decode(const char *in, size_t len, char *out, size_t cap);

/* The status of a call that ended without grpc-status: from the HTTP
 * :status of a response (grpc/doc/http-grpc-status-mapping.md) ... */
int rpc_code_from_http(int http_status);
/* ... or from the error code of an RST_STREAM or GOAWAY (PROTOCOL-HTTP2). */
int rpc_code_from_h2(uint32_t h2_error);

/*
 * The receiving half of message framing: DATA frames arrive in pieces of
 * any size, and a message may span many of them (or a frame hold many
 * messages). The parser copies each message together and hands it over
 * whole. A message over max_message, or one with the compressed flag set
 * (sonde announces and accepts only identity encoding), is an error.
 */
struct rpc_deframer {
    uint8_t prefix[RPC_PREFIX_LEN];
    size_t have_prefix;
    uint8_t *msg; /* buffer of cap bytes, reused across messages */
    size_t cap;
    size_t len;  /* length of the message being read */
    size_t have; /* bytes of it read so far */
    size_t max_message;
    int error; /* enum rpc_code once failed; every later feed fails */
    char why[RPC_STATUS_MAX];
};

/* Called once per whole message; a nonzero return stops the feed and is
 * passed back by rpc_deframer_feed. */
typedef int (*rpc_message_fn)(void *arg, const uint8_t *msg, size_t len);

void rpc_deframer_init(struct rpc_deframer *d, size_t max_message);
void rpc_deframer_free(struct rpc_deframer *d);
/*
 * Feed n bytes. Returns 0 when all of them were taken, the callback's
 * nonzero value when it asked to stop, or -1 on a framing error (d->error
 * and d->why say which). After -1, the deframer refuses everything.
 */
int rpc_deframer_feed(struct rpc_deframer *d, const uint8_t *p, size_t n, rpc_message_fn fn,
                      void *arg);
/* Whether a message is partly read (the stream must not end here). */
int rpc_deframer_partial(const struct rpc_deframer *d);

/* The 5-byte prefix of an uncompressed message of len bytes. */
void rpc_frame_prefix(uint8_t out[RPC_PREFIX_LEN], uint32_t len);

#endif
