/*
 * blake2b: keyed BLAKE2b (what libsodium's crypto_generichash computes),
 * through OpenSSL's BLAKE2BMAC where it can be had. Every byte a client
 * writes is hashed once to name its chunk (DESIGN.md: addr = BLAKE2b-256
 * keyed by the id-key), and on the machines we measure on OpenSSL's code
 * runs at ~1160 MB/s against libsodium's ~600: the hash was a third of
 * the client's CPU during a sequential write. Falls back to libsodium when
 * OpenSSL has no BLAKE2BMAC or fails. The output is the same either way
 * (tests/unit/test_blake2b.c pins it).
 * Thread-safe: each thread keeps its own OpenSSL context.
 */
#ifndef CAIRN_BLAKE2B_H
#define CAIRN_BLAKE2B_H

#include <stddef.h>
#include <stdint.h>

#define BLAKE2B_OUT_MIN 16
#define BLAKE2B_OUT_MAX 64
#define BLAKE2B_KEY_MIN 16
#define BLAKE2B_KEY_MAX 64

/* out_len in [BLAKE2B_OUT_MIN, BLAKE2B_OUT_MAX], key_len in
 * [BLAKE2B_KEY_MIN, BLAKE2B_KEY_MAX]: the ranges both libraries take. */
void blake2b_keyed(uint8_t *out, size_t out_len, const void *in, size_t in_len,
		   const uint8_t *key, size_t key_len);

#endif
