//! Elementwise ops whose CPU versions in candle are slow: tanh (libm's `tanhf`, ~50 ns an
//! element) dominates Gemma's forward on CPU through the GELU and the two soft-caps. These
//! fused f32 CPU kernels are within 2 ulp of the exact tanh (tested) and run in parallel; other
//! devices and dtypes use candle's own ops.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

type Result<T> = candle_core::Result<T>;

/// e^x in f32 without libm, so that loops over it vectorize: Cody-Waite reduction to
/// r = x - k ln 2 (|r| <= ln2/2), a degree-7 Taylor polynomial, and 2^k from the exponent bits.
/// Relative error about 1 ulp for x in [-87, 88] (clamped outside).
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding and subtracting it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let k = (x * LOG2E + ROUND) - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((k as i32 + 127) as u32) << 23);
    p * scale
}

/// tanh in f32, within 2 ulp of the exact value (tested), branch-free so loops vectorize: an
/// odd Taylor series near 0, where `1 - 2/(e^{2x}+1)` would cancel, and that formula elsewhere.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    // tanh x = x (1 - z/3 + 2z²/15 - 17z³/315 + 62z⁴/2835 - 1382z⁵/155925 + 21844z⁶/6081075
    //             - 929569z⁷/638512875 + 6404582z⁸/10854718875 - ...)
    let small = x
        * (1.0
            + z * (-1.0 / 3.0
                + z * (2.0 / 15.0
                    + z * (-17.0 / 315.0
                        + z * (62.0 / 2835.0
                            + z * (-1382.0 / 155925.0
                                + z * (21844.0 / 6081075.0
                                    + z * (-929569.0 / 638512875.0
                                        + z * (6404582.0 / 10854718875.0)))))))));
    let e = exp_f32(2.0 * a.min(9.1));
    let large = (1.0 - 2.0 / (e + 1.0)).copysign(x);
    let t = if a < 0.55 { small } else { large };
    // NaN in, NaN out (the clamps above would turn it into ±1).
    if x.is_nan() {
        x
    } else {
        t
    }
}

/// GELU, tanh approximation, as PyTorch writes it: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))).
#[inline]
pub fn gelu_tanh_f32(x: f32) -> f32 {
    const BETA: f32 = 0.797_884_6; // sqrt(2/pi)
    const KAPPA: f32 = 0.044715;
    let inner = BETA * (x + KAPPA * x * x * x);
    0.5 * x * (1.0 + tanh_f32(inner))
}

#[derive(Clone, Copy)]
enum Kind {
    Tanh,
    GeluTanh,
    /// cap · tanh(x / cap)
    Softcap(f32),
}

struct Elementwise(Kind);

impl CustomOp1 for Elementwise {
    fn name(&self) -> &'static str {
        match self.0 {
            Kind::Tanh => "hh-tanh",
            Kind::GeluTanh => "hh-gelu-tanh",
            Kind::Softcap(_) => "hh-softcap",
        }
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("{}: expected f32", self.name());
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{}: expected a contiguous tensor", self.name());
        };
        let src = &data[start..end];
        let mut dst = vec![0f32; src.len()];
        let kind = self.0;
        let apply = |d: &mut [f32], s: &[f32]| match kind {
            Kind::Tanh => d.iter_mut().zip(s).for_each(|(o, &x)| *o = tanh_f32(x)),
            Kind::GeluTanh => d
                .iter_mut()
                .zip(s)
                .for_each(|(o, &x)| *o = gelu_tanh_f32(x)),
            Kind::Softcap(cap) => d
                .iter_mut()
                .zip(s)
                .for_each(|(o, &x)| *o = cap * tanh_f32(x / cap)),
        };
        // Threads only pay off on large tensors.
        if src.len() < 1 << 16 {
            apply(&mut dst, src);
        } else {
            dst.par_chunks_mut(1 << 14)
                .zip(src.par_chunks(1 << 14))
                .for_each(|(d, s)| apply(d, s));
        }
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

fn use_fast(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

pub fn tanh(x: &Tensor) -> Result<Tensor> {
    if use_fast(x) {
        x.contiguous()?.apply_op1_no_bwd(&Elementwise(Kind::Tanh))
    } else {
        x.tanh()
    }
}

pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    if use_fast(x) {
        x.contiguous()?
            .apply_op1_no_bwd(&Elementwise(Kind::GeluTanh))
    } else {
        x.gelu()
    }
}

/// `cap * tanh(x / cap)` with an exact division like PyTorch.
pub fn softcap(x: &Tensor, cap: f64) -> Result<Tensor> {
    if use_fast(x) {
        return x
            .contiguous()?
            .apply_op1_no_bwd(&Elementwise(Kind::Softcap(cap as f32)));
    }
    let c = Tensor::new(&[cap as f32], x.device())?.to_dtype(x.dtype())?;
    x.broadcast_div(&c)?.tanh()?.broadcast_mul(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> u32 {
        if a == b {
            return 0;
        }
        ((a.to_bits() as i64) - (b.to_bits() as i64)).unsigned_abs() as u32
    }

    #[test]
    fn tanh_is_within_two_ulp() {
        let mut worst = 0;
        let mut x = -12.0f32;
        while x < 12.0 {
            let exact = (x as f64).tanh() as f32;
            worst = worst.max(ulps(tanh_f32(x), exact));
            x += 0.000_37;
        }
        for &x in &[
            0.0f32, -0.0, 1e-30, -1e-8, 0.549_999, 0.55, 9.1, 9.2, 80.0, -80.0,
        ] {
            worst = worst.max(ulps(tanh_f32(x), (x as f64).tanh() as f32));
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn ops_match_candle() {
        let x = Tensor::arange(-400i64, 400, &candle_core::Device::Cpu)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .affine(0.05, 0.0)
            .unwrap();
        let d = |a: &Tensor, b: &Tensor| -> f32 {
            (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert!(d(&tanh(&x).unwrap(), &x.tanh().unwrap()) < 1e-6);
        assert!(d(&gelu_tanh(&x).unwrap(), &x.gelu().unwrap()) < 1e-5);
        let cap = Tensor::new(&[30f32], &candle_core::Device::Cpu).unwrap();
        let slow = x
            .broadcast_div(&cap)
            .unwrap()
            .tanh()
            .unwrap()
            .broadcast_mul(&cap)
            .unwrap();
        assert!(d(&softcap(&x, 30.0).unwrap(), &slow) < 1e-5);
    }
}
