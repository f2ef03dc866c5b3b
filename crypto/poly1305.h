/*
 * poly1305: a one-time Poly1305 tag over scattered bytes, what libsodium's
 * crypto_onetimeauth_* compute, through OpenSSL's Poly1305 where it can
 * be had: on the machines we measure on it runs at ~12 GB/s against
 * libsodium's ~3.8, and every frame's payload (each block a GET or PUT
 * carries) is tagged by one side and checked by the other. Falls back to
 * libsodium when OpenSSL has no Poly1305 (a FIPS-only provider set).
 * Thread-safe: each thread keeps its own OpenSSL context.
 */
#ifndef CAIRN_POLY1305_H
#define CAIRN_POLY1305_H

#include <stdint.h>
#include <sys/uio.h>

#define POLY1305_KEY_BYTES 32
#define POLY1305_TAG_BYTES 16

void poly1305_iov(uint8_t tag[POLY1305_TAG_BYTES], const struct iovec *iov,
		  int iovcnt, const uint8_t key[POLY1305_KEY_BYTES]);

#endif
