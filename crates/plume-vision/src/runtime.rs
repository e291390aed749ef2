//! The ONNX Runtime library and the model sessions: loaded once per process from the models
//! folder, each session behind its own lock, every inference under one counting bound.

use crate::{Result, VisionError};
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

pub const U2NETP: &str = "u2netp.onnx";
pub const ISNET: &str = "isnet-medium.onnx";
pub const TEXT_DETECTOR: &str = "ch_PP-OCRv4_det_infer.onnx";
pub const RUNTIME_LIB: &str = "libonnxruntime.so.1.32.0";

/// Which background model remove-bg uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatteModel {
    U2netp,
    Isnet,
}

#[derive(Debug, Clone)]
pub struct VisionConfig {
    pub models_dir: PathBuf,
    pub matte_model: MatteModel,
    /// Most inferences running at once in this process.
    pub max_concurrent_inferences: usize,
    /// Threads one inference may use.
    pub intra_threads: usize,
}

impl MatteModel {
    /// The model's file in the models folder.
    pub fn file_name(self) -> &'static str {
        match self {
            MatteModel::U2netp => U2NETP,
            MatteModel::Isnet => ISNET,
        }
    }
}

/// A counting bound on concurrent inferences, with the peak it saw (for tests and metrics).
struct Bound {
    limit: usize,
    running: Mutex<usize>,
    freed: Condvar,
    peak: AtomicUsize,
}

impl Bound {
    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= self.limit {
            running = self.freed.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        self.peak.fetch_max(*running, Ordering::SeqCst);
        drop(running);
        let out = f();
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.freed.notify_one();
        out
    }
}

/// A model loaded lazily, once, then kept.
struct Lazy {
    path: PathBuf,
    session: OnceLock<std::result::Result<Mutex<Session>, String>>,
}

pub struct Vision {
    pub config: VisionConfig,
    env: std::result::Result<ort::environment::Environment, String>,
    matte: Lazy,
    text: Lazy,
    /// Gemini's sparkle alpha maps (remove-watermark), read once.
    sparkle: OnceLock<std::result::Result<crate::sparkle::SparkleMaps, String>>,
    bound: Bound,
}

thread_local! {
    /// Time this thread spent in model inference, for the overhead benchmark.
    static INFERENCE_TIME: std::cell::Cell<std::time::Duration> = const { std::cell::Cell::new(std::time::Duration::ZERO) };
}

/// Runs `f` and returns its result with the time it spent in model inference on this thread.
pub fn with_inference_time<T>(f: impl FnOnce() -> T) -> (T, std::time::Duration) {
    let before = INFERENCE_TIME.with(|t| t.get());
    let out = f();
    (out, INFERENCE_TIME.with(|t| t.get()) - before)
}

static RUNTIME: OnceLock<std::result::Result<ort::environment::Environment, String>> =
    OnceLock::new();

fn runtime(dir: &Path) -> std::result::Result<ort::environment::Environment, String> {
    RUNTIME
        .get_or_init(|| {
            let lib = dir.join(RUNTIME_LIB);
            if !lib.exists() {
                return Err(format!("{} is missing", lib.display()));
            }
            ort::init_from(&lib)
                .map_err(|e| format!("cannot load {}: {e}", lib.display()))?
                .with_name("plume")
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
        })
        .clone()
}

impl Vision {
    /// Prepares the models of `config`; nothing is loaded until first use.
    pub fn new(config: VisionConfig) -> Vision {
        let dir = config.models_dir.clone();
        Vision {
            env: runtime(&dir),
            matte: Lazy {
                path: dir.join(config.matte_model.file_name()),
                session: OnceLock::new(),
            },
            text: Lazy {
                path: dir.join(TEXT_DETECTOR),
                session: OnceLock::new(),
            },
            sparkle: OnceLock::new(),
            bound: Bound {
                limit: config.max_concurrent_inferences.max(1),
                running: Mutex::new(0),
                freed: Condvar::new(),
                peak: AtomicUsize::new(0),
            },
            config,
        }
    }

    fn missing(&self, files: &[&Path]) -> std::result::Result<(), String> {
        let missing: Vec<String> = files
            .iter()
            .filter(|p| !p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "model files missing: {}; run scripts/setup-models",
                missing.join(", ")
            ));
        }
        self.env
            .as_ref()
            .map(|_| ())
            .map_err(|e| format!("{e}; run scripts/setup-models"))
    }

    /// Whether remove-bg can run; the reason when not.
    pub fn matte_ready(&self) -> std::result::Result<(), String> {
        self.missing(&[&self.matte.path])
    }

    /// Whether remove-watermark can run; the reason when not.
    pub fn text_ready(&self) -> std::result::Result<(), String> {
        let dir = &self.config.models_dir;
        self.missing(&[
            &self.text.path,
            &dir.join(crate::sparkle::SPARKLE_48),
            &dir.join(crate::sparkle::SPARKLE_96),
        ])
    }

    /// Gemini's sparkle alpha maps, read on first use.
    pub fn sparkle_maps(&self) -> Result<&crate::sparkle::SparkleMaps> {
        self.sparkle
            .get_or_init(|| {
                crate::sparkle::SparkleMaps::load(&self.config.models_dir)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| VisionError::Unavailable(e.clone()))
    }

    fn session<'a>(&self, lazy: &'a Lazy) -> Result<&'a Mutex<Session>> {
        lazy.session
            .get_or_init(|| {
                let env = self.env.as_ref().map_err(Clone::clone)?;
                Session::builder(env)
                    .and_then(|b| {
                        b.with_intra_threads(self.config.intra_threads.max(1))
                            .map_err(Into::into)
                    })
                    .and_then(|mut b| b.commit_from_file(&lazy.path))
                    .map(Mutex::new)
                    .map_err(|e| format!("cannot load {}: {e}", lazy.path.display()))
            })
            .as_ref()
            .map_err(|e| VisionError::Unavailable(e.clone()))
    }

    /// Runs `model` on one NCHW float input; returns the first output's shape and data.
    pub(crate) fn infer(
        &self,
        text_model: bool,
        shape: [usize; 4],
        data: Vec<f32>,
    ) -> Result<(Vec<usize>, Vec<f32>)> {
        let started = std::time::Instant::now();
        let result = self.infer_untimed(text_model, shape, data);
        INFERENCE_TIME.with(|t| t.set(t.get() + started.elapsed()));
        result
    }

    fn infer_untimed(
        &self,
        text_model: bool,
        shape: [usize; 4],
        data: Vec<f32>,
    ) -> Result<(Vec<usize>, Vec<f32>)> {
        let lazy = if text_model { &self.text } else { &self.matte };
        let session = self.session(lazy)?;
        self.bound.run(|| {
            let mut session = session.lock().unwrap_or_else(|e| e.into_inner());
            let input = ort::value::Tensor::from_array((shape.to_vec(), data))?;
            let outputs = session.run(ort::inputs![input])?;
            let (out_shape, values) = outputs[0].try_extract_tensor::<f32>()?;
            Ok((
                out_shape.iter().map(|d| *d as usize).collect(),
                values.to_vec(),
            ))
        })
    }

    /// The most inferences that ran at once so far.
    pub fn peak_concurrent_inferences(&self) -> usize {
        self.bound.peak.load(Ordering::SeqCst)
    }
}
