// The AVX-512 intrinsics for the kernel files that have AVX-512 code (behind
// FASTKV_AVX512_KERNELS, see kernels/vec.h), with GCC 12's false-positive warnings about the
// intrinsics' internal "undefined" operands silenced for the including file (nothing there
// reads uninitialised data). Include it last among a kernel file's includes.
#pragma once

#include "kernels/vec.h"

#ifdef FASTKV_AVX512_KERNELS
#include <immintrin.h>
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
