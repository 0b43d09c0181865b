//! The device layouts of field elements and points, and their conversions
//! to and from halo2curves types. Field elements cross in Montgomery form,
//! limb for limb, as halo2curves holds them (its raw serialization).

use bytemuck::{Pod, Zeroable};
use halo2curves::bn256::{Fq, Fr, G1Affine, G1};
use halo2curves::ff::Field;
use halo2curves::group::prime::PrimeCurveAffine;
use halo2curves::serde::SerdeObject;
use halo2curves::CurveAffine;
use rayon::prelude::*;

use crate::{KernelError, Result};

/// A BN254 Fr or Fq element: 8 little-endian 32-bit limbs, Montgomery form.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FieldRepr(pub [u32; 8]);

// SAFETY: plain 32-byte POD with the layout of the kernels' `Field<P>`.
unsafe impl cudarc::driver::DeviceRepr for FieldRepr {}

/// An affine G1 point (x, y); the identity is (0, 0) as in halo2curves.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct AffineRepr {
    pub x: FieldRepr,
    pub y: FieldRepr,
}

/// A Jacobian G1 point (X, Y, Z) = (X/Z^2, Y/Z^3); Z = 0 is the identity.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct JacobianRepr {
    pub x: FieldRepr,
    pub y: FieldRepr,
    pub z: FieldRepr,
}

fn to_repr<F: SerdeObject>(f: &F) -> FieldRepr {
    let mut bytes = [0u8; 32];
    f.write_raw(&mut &mut bytes[..]).expect("32 bytes fit");
    FieldRepr(bytemuck::cast(bytes))
}

fn from_repr<F: SerdeObject>(r: &FieldRepr) -> F {
    F::from_raw_bytes_unchecked(bytemuck::bytes_of(r))
}

impl From<&Fr> for FieldRepr {
    fn from(f: &Fr) -> Self {
        to_repr(f)
    }
}
impl From<&Fq> for FieldRepr {
    fn from(f: &Fq) -> Self {
        to_repr(f)
    }
}

impl FieldRepr {
    /// As an Fr element (the limbs are taken as Montgomery form).
    pub fn to_fr(&self) -> Fr {
        from_repr(self)
    }
    /// As an Fq element (the limbs are taken as Montgomery form).
    pub fn to_fq(&self) -> Fq {
        from_repr(self)
    }
}

impl From<&G1Affine> for AffineRepr {
    fn from(p: &G1Affine) -> Self {
        if bool::from(p.is_identity()) {
            return AffineRepr::default();
        }
        AffineRepr { x: (&p.x).into(), y: (&p.y).into() }
    }
}

impl JacobianRepr {
    /// The point this represents; `NotOnCurve` if the device produced
    /// coordinates off the curve.
    pub fn to_affine(&self) -> Result<G1Affine> {
        let z = self.z.to_fq();
        if bool::from(z.is_zero()) {
            return Ok(G1Affine::identity());
        }
        let zinv = z.invert().expect("z is not zero");
        let zinv2 = zinv.square();
        let x = self.x.to_fq() * zinv2;
        let y = self.y.to_fq() * zinv2 * zinv;
        Option::from(G1Affine::from_xy(x, y)).ok_or(KernelError::NotOnCurve)
    }
    /// As a projective halo2curves point.
    pub fn to_curve(&self) -> Result<G1> {
        Ok(self.to_affine()?.into())
    }
}

// The conversions run on every host thread: at 2^24 elements they are what
// a single thread spends most of a device transform's wall time on (the
// H200 figures of bench/README.md).

/// Elements per rayon task of a conversion.
const MIN_LEN: usize = 1 << 12;

/// Fr slice to device layout.
pub fn frs(v: &[Fr]) -> Vec<FieldRepr> {
    v.par_iter().with_min_len(MIN_LEN).map(FieldRepr::from).collect()
}

/// Polynomials of one length to device layout, one after another.
pub fn frs_flat(polys: &[&[Fr]]) -> Vec<FieldRepr> {
    let n = polys.first().map_or(0, |p| p.len());
    assert!(polys.iter().all(|p| p.len() == n), "polynomials of one length");
    (0..n * polys.len()).into_par_iter().with_min_len(MIN_LEN).map(|i| FieldRepr::from(&polys[i / n][i % n])).collect()
}

/// Device layout back to Fr.
pub fn to_frs(v: &[FieldRepr]) -> Vec<Fr> {
    v.par_iter().with_min_len(MIN_LEN).map(FieldRepr::to_fr).collect()
}

/// Device layout back to Fr, cut into polynomials of `n` values each.
pub fn to_frs_chunks(v: &[FieldRepr], n: usize) -> Vec<Vec<Fr>> {
    v.chunks_exact(n).map(to_frs).collect()
}

/// Device layout back to Fr, into `dst` (the same length).
pub fn to_frs_into(v: &[FieldRepr], dst: &mut [Fr]) {
    assert_eq!(v.len(), dst.len(), "one value per slot");
    dst.par_iter_mut().with_min_len(MIN_LEN).zip(v).for_each(|(d, r)| *d = r.to_fr());
}

/// Affine points to device layout.
pub fn affines(v: &[G1Affine]) -> Vec<AffineRepr> {
    v.par_iter().with_min_len(MIN_LEN).map(AffineRepr::from).collect()
}
