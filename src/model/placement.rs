//! Where a model's weights live: on one device, or its layers split over several devices
//! (pipeline placement, as accelerate's `device_map="auto"` does), for models larger than one
//! card.
//!
//! The split is contiguous — layers `0..a` on the first device, `a..b` on the second, ... — so
//! a forward pass moves only the residual stream, once per device boundary. The embedding, the
//! final norm and the unembedding stay on the first device (the "home" device), where every
//! operation the algorithms call takes its inputs and returns its results: the algorithms' caches
//! and readouts never see a second device, and a placed model gives the same numbers as one on
//! a single device.

use candle_core::Device;

use super::ModelError;

/// Which device holds each layer.
#[derive(Debug, Clone)]
pub struct DeviceMap {
    devices: Vec<Device>,
    /// Index into `devices` of each layer's device.
    of_layer: Vec<usize>,
}

impl DeviceMap {
    /// Every layer on `device`.
    pub fn single(device: &Device, n_layers: usize) -> Self {
        DeviceMap {
            devices: vec![device.clone()],
            of_layer: vec![0; n_layers],
        }
    }

    /// `n_layers` layers split contiguously over `devices`, balanced by weight bytes: the first
    /// device also holds the embedding and unembedding, worth `globals` layers, so it takes that
    /// many fewer. Every device gets at least one layer.
    pub fn split(devices: &[Device], n_layers: usize, globals: f64) -> Result<Self, ModelError> {
        let k = devices.len();
        if k == 0 {
            return Err(ModelError::Invalid(
                "no device to place the layers on".into(),
            ));
        }
        if k > n_layers {
            return Err(ModelError::Invalid(format!(
                "cannot split {n_layers} layers over {k} devices: each device needs a layer"
            )));
        }
        let counts = split_counts(n_layers, k, globals);
        let mut of_layer = Vec::with_capacity(n_layers);
        for (d, &c) in counts.iter().enumerate() {
            of_layer.extend(std::iter::repeat_n(d, c));
        }
        Ok(DeviceMap {
            devices: devices.to_vec(),
            of_layer,
        })
    }

    /// The device of the embedding, the unembedding, and every operation's inputs and results.
    pub fn home(&self) -> &Device {
        &self.devices[0]
    }

    /// The device that holds layer `l`'s weights.
    pub fn layer(&self, l: usize) -> &Device {
        &self.devices[self.of_layer[l]]
    }

    /// Index (into [`DeviceMap::devices`]) of layer `l`'s device.
    pub fn layer_index(&self, l: usize) -> usize {
        self.of_layer[l]
    }

    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// Whether any layer lives away from the home device (only then does anything move).
    pub fn is_split(&self) -> bool {
        self.devices.len() > 1
    }

    /// Each device's layers, in order: `(device index, first layer, last layer)`.
    pub fn ranges(&self) -> Vec<(usize, usize, usize)> {
        let mut out: Vec<(usize, usize, usize)> = Vec::new();
        for (l, &d) in self.of_layer.iter().enumerate() {
            match out.last_mut() {
                Some(r) if r.0 == d => r.2 = l,
                _ => out.push((d, l, l)),
            }
        }
        out
    }
}

/// Layer counts per device (`k` ≤ `n`), contiguous, summing to `n`: the first device carries
/// `globals` layers' worth of extra weights. Each device gets its fair share of `n + globals`
/// (the first that much less), at least one layer. The memory estimate splits by it too.
pub fn split_counts(n: usize, k: usize, globals: f64) -> Vec<usize> {
    let globals = globals.max(0.0);
    let total = n as f64 + globals;
    let share = total / k as f64;
    let mut counts = Vec::with_capacity(k);
    let mut placed = 0usize;
    for d in 0..k {
        let left_devices = k - d - 1;
        let want = if d == 0 { share - globals } else { share };
        let max_here = n - placed - left_devices;
        let c = if d == k - 1 {
            n - placed
        } else {
            (want.round().max(1.0) as usize).min(max_here)
        };
        counts.push(c);
        placed += c;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_contiguous_balanced_and_complete() {
        assert_eq!(split_counts(8, 2, 0.0), vec![4, 4]);
        assert_eq!(split_counts(9, 2, 0.0), vec![5, 4]);
        // The home device holds the embeddings (worth 2 layers): it takes fewer layers.
        assert_eq!(split_counts(10, 2, 2.0), vec![4, 6]);
        // Huge embeddings still leave the home device one layer.
        assert_eq!(split_counts(4, 2, 50.0), vec![1, 3]);
        assert_eq!(split_counts(3, 3, 0.0), vec![1, 1, 1]);
        for n in 1..40 {
            for k in 1..=n.min(8) {
                let c = split_counts(n, k, 1.5);
                assert_eq!(c.iter().sum::<usize>(), n, "n={n} k={k}");
                assert!(c.iter().all(|&x| x >= 1), "n={n} k={k}: {c:?}");
            }
        }
    }

    #[test]
    fn split_maps_layers_and_refuses_too_many_devices() {
        let cpu = Device::Cpu;
        let m = DeviceMap::split(&[cpu.clone(), cpu.clone()], 5, 0.0).unwrap();
        assert_eq!(m.ranges(), vec![(0, 0, 2), (1, 3, 4)]);
        assert!(m.is_split());
        assert!(!DeviceMap::single(&cpu, 5).is_split());
        let e = DeviceMap::split(&[cpu.clone(), cpu.clone(), cpu], 2, 0.0).unwrap_err();
        assert!(e.to_string().contains("2 layers over 3 devices"), "{e}");
    }
}
