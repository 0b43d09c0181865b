// BN254 prime fields in Montgomery form: 8 little-endian 32-bit limbs,
// R = 2^256. The byte layout equals halo2curves' `Fr`/`Fq` (four
// little-endian u64 limbs, Montgomery form), so buffers are copied as is.
#pragma once
#include "common.cuh"

// Scalar field r of BN254.
struct FrParams {
    static SS_HD u32 p(int i) {
        switch (i) {
            case 0: return 0xf0000001u; case 1: return 0x43e1f593u; case 2: return 0x79b97091u;
            case 3: return 0x2833e848u; case 4: return 0x8181585du; case 5: return 0xb85045b6u;
            case 6: return 0xe131a029u; default: return 0x30644e72u;
        }
    }
    static SS_HD u32 r2(int i) {
        switch (i) {
            case 0: return 0xae216da7u; case 1: return 0x1bb8e645u; case 2: return 0xe35c59e3u;
            case 3: return 0x53fe3ab1u; case 4: return 0x53bb8085u; case 5: return 0x8c49833du;
            case 6: return 0x7f4e44a5u; default: return 0x0216d0b1u;
        }
    }
    static SS_HD u32 one(int i) {
        switch (i) {
            case 0: return 0x4ffffffbu; case 1: return 0xac96341cu; case 2: return 0x9f60cd29u;
            case 3: return 0x36fc7695u; case 4: return 0x7879462eu; case 5: return 0x666ea36fu;
            case 6: return 0x9a07df2fu; default: return 0x0e0a77c1u;
        }
    }
    // -p^-1 mod 2^32
    static constexpr u32 INV = 0xefffffffu;
};

// Base field q of BN254 (G1 coordinates).
struct FqParams {
    static SS_HD u32 p(int i) {
        switch (i) {
            case 0: return 0xd87cfd47u; case 1: return 0x3c208c16u; case 2: return 0x6871ca8du;
            case 3: return 0x97816a91u; case 4: return 0x8181585du; case 5: return 0xb85045b6u;
            case 6: return 0xe131a029u; default: return 0x30644e72u;
        }
    }
    static SS_HD u32 r2(int i) {
        switch (i) {
            case 0: return 0x538afa89u; case 1: return 0xf32cfc5bu; case 2: return 0xd44501fbu;
            case 3: return 0xb5e71911u; case 4: return 0x0a417ff6u; case 5: return 0x47ab1effu;
            case 6: return 0xcab8351fu; default: return 0x06d89f71u;
        }
    }
    static SS_HD u32 one(int i) {
        switch (i) {
            case 0: return 0xc58f0d9du; case 1: return 0xd35d438du; case 2: return 0xf5c70b3du;
            case 3: return 0x0a78eb28u; case 4: return 0x7879462cu; case 5: return 0x666ea36fu;
            case 6: return 0x9a07df2fu; default: return 0x0e0a77c1u;
        }
    }
    static constexpr u32 INV = 0xe4866389u;
};

// An element of the field with parameters P. Plain data (no constructors), so
// it can live in __shared__ memory and cross the launch boundary by value.
template <class P>
struct Field {
    u32 v[8];

    static SS_HD Field zero() {
        Field r;
#pragma unroll
        for (int i = 0; i < 8; i++) r.v[i] = 0;
        return r;
    }
    static SS_HD Field one() {
        Field r;
#pragma unroll
        for (int i = 0; i < 8; i++) r.v[i] = P::one(i);
        return r;
    }
    SS_HD bool is_zero() const {
        u32 acc = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) acc |= v[i];
        return acc == 0;
    }
    SS_HD bool operator==(const Field& o) const {
        u32 acc = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) acc |= v[i] ^ o.v[i];
        return acc == 0;
    }
    SS_HD bool operator!=(const Field& o) const { return !(*this == o); }

    // this >= p, for a 256-bit value (used after additions and reductions).
    static SS_HD bool geq_modulus(const u32* t) {
#pragma unroll
        for (int i = 7; i >= 0; i--) {
            if (t[i] != P::p(i)) return t[i] > P::p(i);
        }
        return true;
    }
    static SS_HD void sub_modulus(u32* t) {
        u64 borrow = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            u64 d = (u64)t[i] - P::p(i) - borrow;
            t[i] = (u32)d;
            borrow = (d >> 63);
        }
    }

    // p < 2^254, so a + b < 2^255 never overflows 256 bits.
    SS_HD Field operator+(const Field& o) const {
        Field r;
        u64 carry = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            u64 s = (u64)v[i] + o.v[i] + carry;
            r.v[i] = (u32)s;
            carry = s >> 32;
        }
        if (geq_modulus(r.v)) sub_modulus(r.v);
        return r;
    }
    SS_HD Field operator-(const Field& o) const {
        Field r;
        u64 borrow = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            u64 d = (u64)v[i] - o.v[i] - borrow;
            r.v[i] = (u32)d;
            borrow = d >> 63;
        }
        if (borrow) {
            u64 carry = 0;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                u64 s = (u64)r.v[i] + P::p(i) + carry;
                r.v[i] = (u32)s;
                carry = s >> 32;
            }
        }
        return r;
    }
    SS_HD Field operator-() const { return zero() - *this; }
    SS_HD Field dbl() const { return *this + *this; }

    // Montgomery multiplication, CIOS (coarsely integrated operand scanning):
    // 64 + 64 + 8 32x32-bit products, one conditional subtraction.
    SS_HD Field operator*(const Field& o) const {
        u32 t[10];
#pragma unroll
        for (int i = 0; i < 10; i++) t[i] = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            u64 carry = 0;
#pragma unroll
            for (int j = 0; j < 8; j++) {
                u64 s = (u64)v[j] * o.v[i] + t[j] + carry;
                t[j] = (u32)s;
                carry = s >> 32;
            }
            u64 s = (u64)t[8] + carry;
            t[8] = (u32)s;
            t[9] = (u32)(s >> 32);
            u32 m = t[0] * P::INV;
            s = (u64)m * P::p(0) + t[0];
            carry = s >> 32;
#pragma unroll
            for (int j = 1; j < 8; j++) {
                s = (u64)m * P::p(j) + t[j] + carry;
                t[j - 1] = (u32)s;
                carry = s >> 32;
            }
            s = (u64)t[8] + carry;
            t[7] = (u32)s;
            t[8] = t[9] + (u32)(s >> 32);
        }
        Field r;
#pragma unroll
        for (int i = 0; i < 8; i++) r.v[i] = t[i];
        if (t[8] != 0 || geq_modulus(r.v)) sub_modulus(r.v);
        return r;
    }
    SS_HD Field sqr() const { return *this * *this; }

    // Montgomery form -> canonical integer limbs (multiply by 1).
    SS_HD Field from_mont() const {
        Field one_raw = zero();
        one_raw.v[0] = 1;
        return *this * one_raw;
    }
    // Canonical integer limbs (< p) -> Montgomery form.
    SS_HD Field to_mont() const {
        Field r2;
#pragma unroll
        for (int i = 0; i < 8; i++) r2.v[i] = P::r2(i);
        return *this * r2;
    }

    // this^e for a small exponent (square-and-multiply over e's bits).
    SS_HD Field pow_u64(u64 e) const {
        Field acc = one();
        Field base = *this;
        while (e) {
            if (e & 1) acc = acc * base;
            base = base.sqr();
            e >>= 1;
        }
        return acc;
    }

    // Multiplicative inverse by Fermat (this^(p-2)); zero maps to zero.
    SS_HD Field inverse() const {
        Field acc = one();
        for (int i = 7; i >= 0; i--) {
            u32 e = P::p(i) - (i == 0 ? 2u : 0u);
            for (int b = 31; b >= 0; b--) {
                acc = acc.sqr();
                if ((e >> b) & 1) acc = acc * *this;
            }
        }
        return acc;
    }
};

typedef Field<FrParams> Fr;
typedef Field<FqParams> Fq;
