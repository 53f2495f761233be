//! Five facial landmarks (eye centres, nose tip, mouth corners) with MTCNN's output network
//! (ONet), bundled in `models/` and read from the binary itself.
//!
//! The network is small (four convolutions, two dense layers, about 13 million multiply-adds
//! for one 48x48 face), so it runs here in plain Rust rather than through an inference engine:
//! the weights are read once from the ONNX file as shipped, and `onet_matches_onnxruntime`
//! holds this code to onnxruntime's outputs on the same inputs.

use std::sync::OnceLock;

use image::RgbImage;
use ndarray::{ArrayView1, ArrayView2};
use prost::Message as _;

static MODEL_BYTES: &[u8] = include_bytes!("../../models/mtcnn_onet.onnx");

/// The network's input side, in pixels.
pub(crate) const INPUT: u32 = 48;

/// The five points, in the pixel coordinates of the image the face was cut from. "Left" is the
/// image's left: the person's right eye.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Landmarks {
    pub(crate) left_eye: (f32, f32),
    pub(crate) right_eye: (f32, f32),
    pub(crate) nose: (f32, f32),
    pub(crate) mouth_left: (f32, f32),
    pub(crate) mouth_right: (f32, f32),
    /// The network's own confidence that the crop holds a face, 0 to 1.
    pub(crate) score: f32,
}

/// What the network answers for one 48x48 crop: ten coordinates (five x, then five y, each a
/// fraction of the crop) and the face probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Output {
    pub(crate) points: [f32; 10],
    pub(crate) score: f32,
}

impl Output {
    /// The points in an image where the crop was the rectangle at (`left`, `top`) of
    /// `width` x `height` pixels.
    pub(crate) fn place(&self, left: f32, top: f32, width: f32, height: f32) -> Landmarks {
        let p = |i: usize| {
            (
                left + self.points[i] * width,
                top + self.points[i + 5] * height,
            )
        };
        Landmarks {
            left_eye: p(0),
            right_eye: p(1),
            nose: p(2),
            mouth_left: p(3),
            mouth_right: p(4),
            score: self.score,
        }
    }
}

/// Runs the network on a 48x48 RGB crop.
pub(crate) fn run(crop: &RgbImage) -> Output {
    assert_eq!(crop.dimensions(), (INPUT, INPUT), "ONet takes 48x48 crops");
    model().forward(crop)
}

fn model() -> &'static Onet {
    static MODEL: OnceLock<Onet> = OnceLock::new();
    MODEL.get_or_init(|| {
        Onet::read(MODEL_BYTES).expect("the bundled landmark model is valid (checked by tests)")
    })
}

// The parts of ONNX's protobuf schema (onnx.proto) the weights live in; prost skips the rest.
#[derive(Clone, PartialEq, prost::Message)]
struct ModelProto {
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(float, repeated, tag = "4")]
    float_data: Vec<f32>,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
}

impl TensorProto {
    /// The values, whichever of the two fields holds them (raw data is little-endian f32).
    fn values(&self) -> Vec<f32> {
        if self.float_data.is_empty() {
            self.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        } else {
            self.float_data.clone()
        }
    }
}

/// A tensor of `channels` planes of `rows` x `cols` values.
struct Tensor {
    channels: usize,
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

/// A valid (unpadded), stride-1 convolution; weights as ONNX stores them, `[out][in][k][k]`.
struct Conv {
    outputs: usize,
    inputs: usize,
    k: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
    /// PReLU slope per output channel, applied after the convolution.
    slope: Vec<f32>,
}

impl Conv {
    /// As one matrix product: the weights (`outputs` x `inputs`·k·k) times the input's patches
    /// (`inputs`·k·k x rows·cols), which is the output in planes.
    fn forward(&self, x: &Tensor) -> Tensor {
        debug_assert_eq!(x.channels, self.inputs);
        let (rows, cols) = (x.rows - self.k + 1, x.cols - self.k + 1);
        let plane = rows * cols;
        let depth = self.inputs * self.k * self.k;
        let mut patches = vec![0.0f32; depth * plane];
        for (r, patch) in patches.chunks_exact_mut(plane).enumerate() {
            let (i, ky, kx) = (r / (self.k * self.k), r / self.k % self.k, r % self.k);
            let src = &x.data[i * x.rows * x.cols..];
            for (y, row) in patch.chunks_exact_mut(cols).enumerate() {
                row.copy_from_slice(&src[(y + ky) * x.cols + kx..][..cols]);
            }
        }
        let weights = ArrayView2::from_shape((self.outputs, depth), &self.weights)
            .expect("the weights' shape was checked when read");
        let patches = ArrayView2::from_shape((depth, plane), &patches).expect("sized above");
        let mut out = weights.dot(&patches);
        for (o, mut row) in out.outer_iter_mut().enumerate() {
            let (b, a) = (self.bias[o], self.slope[o]);
            row.mapv_inplace(|v| {
                let v = v + b;
                if v < 0.0 { v * a } else { v }
            });
        }
        Tensor {
            channels: self.outputs,
            rows,
            cols,
            data: out.into_raw_vec_and_offset().0,
        }
    }
}

/// Max pooling; with `same`, ONNX's SAME_UPPER (the output is ceil(input / stride), windows
/// running past the end see only the values inside).
fn max_pool(x: &Tensor, k: usize, stride: usize, same: bool) -> Tensor {
    let out_len = |n: usize| {
        if same {
            n.div_ceil(stride)
        } else {
            (n - k) / stride + 1
        }
    };
    let (rows, cols) = (out_len(x.rows), out_len(x.cols));
    let mut data = Vec::with_capacity(x.channels * rows * cols);
    for c in 0..x.channels {
        let src = &x.data[c * x.rows * x.cols..(c + 1) * x.rows * x.cols];
        for r in 0..rows {
            for q in 0..cols {
                let mut m = f32::NEG_INFINITY;
                for y in r * stride..(r * stride + k).min(x.rows) {
                    for v in
                        &src[y * x.cols + q * stride..y * x.cols + (q * stride + k).min(x.cols)]
                    {
                        m = m.max(*v);
                    }
                }
                data.push(m);
            }
        }
    }
    Tensor {
        channels: x.channels,
        rows,
        cols,
        data,
    }
}

/// A dense layer; weights `[in][out]` as the ONNX MatMul takes them.
struct Dense {
    outputs: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let weights = ArrayView2::from_shape((x.len(), self.outputs), &self.weights)
            .expect("the weights' shape was checked when read");
        let mut out = ArrayView1::from(x).dot(&weights);
        out += &ArrayView1::from(&self.bias[..]);
        out.to_vec()
    }
}

struct Onet {
    convs: [Conv; 4],
    hidden: Dense,
    hidden_slope: Vec<f32>,
    points: Dense,
    classes: Dense,
}

impl Onet {
    fn read(bytes: &[u8]) -> Result<Onet, String> {
        let model = ModelProto::decode(bytes).map_err(|e| format!("not an ONNX model: {e}"))?;
        let tensors = model.graph.ok_or("the model has no graph")?.initializer;
        let get = |name: &str, len: usize| -> Result<Vec<f32>, String> {
            let t = tensors
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| format!("the model has no tensor {name}"))?;
            let v = t.values();
            let dims: i64 = t.dims.iter().product();
            if v.len() != len || dims != len as i64 {
                return Err(format!("{name} holds {} values, expected {len}", v.len()));
            }
            Ok(v)
        };
        let conv = |n: u32, prelu: &str, outputs: usize, inputs: usize, k: usize| {
            Ok::<_, String>(Conv {
                outputs,
                inputs,
                k,
                weights: get(&format!("conv2d_{n}/kernel:0"), outputs * inputs * k * k)?,
                bias: get(&format!("conv2d_{n}/bias:0"), outputs)?,
                slope: get(prelu, outputs)?,
            })
        };
        let dense = |n: u32, inputs: usize, outputs: usize| {
            Ok::<_, String>(Dense {
                outputs,
                weights: get(&format!("dense_{n}/kernel:0"), inputs * outputs)?,
                bias: get(&format!("dense_{n}/bias:0"), outputs)?,
            })
        };
        Ok(Onet {
            convs: [
                conv(8, "p_re_lu_7_initializer_22", 32, 3, 3)?,
                conv(9, "p_re_lu_8_initializer_20", 64, 32, 3)?,
                conv(10, "p_re_lu_9_initializer_18", 64, 64, 3)?,
                conv(11, "p_re_lu_10_initializer_16", 128, 64, 2)?,
            ],
            hidden: dense(3, 1152, 256)?,
            hidden_slope: get("slope", 256)?,
            points: dense(6, 256, 10)?,
            classes: dense(4, 256, 2)?,
        })
    }

    fn forward(&self, crop: &RgbImage) -> Output {
        // The network was trained on transposed images (MATLAB's column-major order): its
        // first spatial axis is x.
        let n = INPUT as usize;
        let mut data = vec![0.0f32; 3 * n * n];
        for (x, y, p) in crop.enumerate_pixels() {
            for c in 0..3 {
                data[(c * n + x as usize) * n + y as usize] =
                    (f32::from(p.0[c]) - 127.5) * 0.0078125;
            }
        }
        let x = Tensor {
            channels: 3,
            rows: n,
            cols: n,
            data,
        };
        let x = max_pool(&self.convs[0].forward(&x), 3, 2, true);
        let x = max_pool(&self.convs[1].forward(&x), 3, 2, false);
        let x = max_pool(&self.convs[2].forward(&x), 2, 2, true);
        let x = self.convs[3].forward(&x);
        // Flattened channels last, as the Keras model did.
        let plane = x.rows * x.cols;
        let mut flat = Vec::with_capacity(x.data.len());
        for i in 0..plane {
            for c in 0..x.channels {
                flat.push(x.data[c * plane + i]);
            }
        }
        let mut hidden = self.hidden.forward(&flat);
        for (v, a) in hidden.iter_mut().zip(&self.hidden_slope) {
            if *v < 0.0 {
                *v *= a;
            }
        }
        let points = self.points.forward(&hidden);
        let classes = self.classes.forward(&hidden);
        let m = classes[0].max(classes[1]);
        let (e0, e1) = ((classes[0] - m).exp(), (classes[1] - m).exp());
        Output {
            points: points.try_into().expect("ten landmark coordinates"),
            score: e1 / (e0 + e1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fixtures/onet holds 48x48 inputs and what onnxruntime answers for them with the same
    /// model file (fixtures/make_onet_reference.py).
    #[test]
    fn onet_matches_onnxruntime() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/onet");
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
        let cases = expected.as_object().unwrap();
        assert_eq!(cases.len(), 5);
        for (name, want) in cases {
            let input = image::open(dir.join(format!("{name}.png")))
                .unwrap()
                .into_rgb8();
            let got = run(&input);
            let points: Vec<f64> = want["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(points.len(), 10);
            for (i, (g, w)) in got.points.iter().zip(&points).enumerate() {
                assert!(
                    (f64::from(*g) - w).abs() < 1e-4,
                    "{name}: coordinate {i} is {g}, onnxruntime says {w}"
                );
            }
            let score = want["score"].as_f64().unwrap();
            assert!(
                (f64::from(got.score) - score).abs() < 1e-4,
                "{name}: score {} against {score}",
                got.score
            );
        }
    }
}
