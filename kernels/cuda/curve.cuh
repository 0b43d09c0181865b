// BN254 G1 (y^2 = x^3 + 3 over Fq) in affine and Jacobian coordinates.
// Affine layout equals halo2curves' `G1Affine` (x then y, Montgomery Fq);
// its identity is (0, 0), as in halo2curves. Jacobian (X, Y, Z) stands for
// (X/Z^2, Y/Z^3); Z = 0 is the point at infinity.
#pragma once
#include "field.cuh"

struct Affine {
    Fq x, y;
    SS_HD bool is_identity() const { return x.is_zero() && y.is_zero(); }
};

struct Jacobian {
    Fq x, y, z;

    static SS_HD Jacobian identity() {
        Jacobian r;
        r.x = Fq::one();
        r.y = Fq::one();
        r.z = Fq::zero();
        return r;
    }
    static SS_HD Jacobian from_affine(const Affine& a) {
        if (a.is_identity()) return identity();
        Jacobian r;
        r.x = a.x;
        r.y = a.y;
        r.z = Fq::one();
        return r;
    }
    SS_HD bool is_identity() const { return z.is_zero(); }

    // dbl-2009-l (a = 0): 2M + 5S.
    SS_HD Jacobian dbl() const {
        if (is_identity()) return *this;
        Fq a = x.sqr();
        Fq b = y.sqr();
        Fq c = b.sqr();
        Fq d = ((x + b).sqr() - a - c).dbl();
        Fq e = a.dbl() + a;
        Fq f = e.sqr();
        Jacobian r;
        r.x = f - d.dbl();
        Fq c8 = c.dbl().dbl().dbl();
        r.y = e * (d - r.x) - c8;
        r.z = (y * z).dbl();
        return r;
    }

    // add-2007-bl: 11M + 5S; falls back to doubling for P + P.
    SS_HD Jacobian add(const Jacobian& q) const {
        if (is_identity()) return q;
        if (q.is_identity()) return *this;
        Fq z1z1 = z.sqr();
        Fq z2z2 = q.z.sqr();
        Fq u1 = x * z2z2;
        Fq u2 = q.x * z1z1;
        Fq s1 = y * q.z * z2z2;
        Fq s2 = q.y * z * z1z1;
        Fq h = u2 - u1;
        Fq rr = (s2 - s1).dbl();
        if (h.is_zero()) {
            if (rr.is_zero()) return dbl();
            return identity();
        }
        Fq i = h.dbl().sqr();
        Fq j = h * i;
        Fq v = u1 * i;
        Jacobian r;
        r.x = rr.sqr() - j - v.dbl();
        r.y = rr * (v - r.x) - (s1 * j).dbl();
        r.z = ((z + q.z).sqr() - z1z1 - z2z2) * h;
        return r;
    }

    // madd-2007-bl (mixed addition with an affine point): 7M + 4S.
    SS_HD Jacobian add_affine(const Affine& q) const {
        if (q.is_identity()) return *this;
        if (is_identity()) return from_affine(q);
        Fq z1z1 = z.sqr();
        Fq u2 = q.x * z1z1;
        Fq s2 = q.y * z * z1z1;
        Fq h = u2 - x;
        Fq rr = (s2 - y).dbl();
        if (h.is_zero()) {
            if (rr.is_zero()) return dbl();
            return identity();
        }
        Fq hh = h.sqr();
        Fq i = hh.dbl().dbl();
        Fq j = h * i;
        Fq v = x * i;
        Jacobian r;
        r.x = rr.sqr() - j - v.dbl();
        r.y = rr * (v - r.x) - (y * j).dbl();
        r.z = (z + h).sqr() - z1z1 - hh;
        return r;
    }

    // k * this for a small non-negative integer k (double-and-add).
    SS_HD Jacobian mul_u32(u32 k) const {
        Jacobian acc = identity();
        for (int b = 31; b >= 0; b--) {
            acc = acc.dbl();
            if ((k >> b) & 1) acc = acc.add(*this);
        }
        return acc;
    }
};
