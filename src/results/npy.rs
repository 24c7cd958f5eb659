//! Minimal `.npy` (NumPy format 1.0) writing and reading of little-endian float64 arrays.

/// Encodes a C-order f64 array of `shape` as `.npy` bytes.
pub fn encode_f64(data: &[f64], shape: &[usize]) -> Vec<u8> {
    assert_eq!(data.len(), shape.iter().product::<usize>());
    let shape_txt = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Decodes what `encode_f64` wrote: (data, shape). For tests and round trips.
pub fn decode_f64(bytes: &[u8]) -> Option<(Vec<f64>, Vec<usize>)> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return None;
    }
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(bytes.get(10..10 + hlen)?).ok()?;
    if !header.contains("'<f8'") {
        return None;
    }
    let shape_txt = header.split("'shape': (").nth(1)?.split(')').next()?;
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    let body = &bytes[10 + hlen..];
    let data: Vec<f64> = body
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (data.len() == shape.iter().product::<usize>()).then_some((data, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_alignment() {
        let data = vec![1.0, -2.5, f64::NAN, 4.0, 5.0, 6.0];
        let bytes = encode_f64(&data, &[2, 3]);
        assert_eq!((bytes.len() - data.len() * 8) % 64, 0);
        let (d, s) = decode_f64(&bytes).unwrap();
        assert_eq!(s, vec![2, 3]);
        assert_eq!(d[0], 1.0);
        assert!(d[2].is_nan());
    }
}
