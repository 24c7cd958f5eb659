//! Peak device memory on CUDA, sampled by a background thread (the driver has no peak counter
//! of its own): used = total - free, polled every millisecond while a measurement runs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct PeakSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    handle: Option<JoinHandle<()>>,
}

impl PeakSampler {
    /// Starts sampling the device of `device`; `None` on CPU.
    pub fn start(device: &candle_core::Device) -> Option<Self> {
        let candle_core::Device::Cuda(dev) = device else {
            return None;
        };
        let ctx = dev.cuda_stream().context().clone();
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok((free, total)) = ctx.mem_get_info() {
                    p.fetch_max(total.saturating_sub(free), Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        });
        Some(PeakSampler {
            stop,
            peak,
            handle: Some(handle),
        })
    }

    /// Stops sampling; the peak bytes in use on the device.
    pub fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for PeakSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
