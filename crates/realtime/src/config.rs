//! The intended session config and its builder. Every `session.update` we send carries all of
//! it, so a handoff that changes instructions cannot reset the G.711 format or the voice
//! (protocol §8, openai-agents-python #1632).

use crate::audio::{AudioFormat, PCM_RATE};
use crate::client::{ClientEvent, SessionUpdate};
use crate::error::ConfigError;
use crate::session::{
    AudioInput, AudioOutput, Eagerness, FunctionTool, Inf, MaxOutputTokens, Modality,
    NoiseReduction, Session, SessionAudio, SessionType, Tool, ToolChoice, Transcription,
    TurnDetection, Voice,
};

/// A validated, complete session config.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    model: Option<String>,
    instructions: String,
    tools: Vec<FunctionTool>,
    tool_choice: ToolChoice,
    modality: Modality,
    max_output_tokens: MaxOutputTokens,
    input_format: AudioFormat,
    output_format: AudioFormat,
    noise_reduction: Option<NoiseReduction>,
    transcription: Option<Transcription>,
    turn_detection: Option<TurnDetection>,
    voice: Voice,
    speed: f64,
}

impl SessionConfig {
    /// A builder with our defaults: pcm 24 kHz both ways, server VAD, voice `marin`, audio out.
    pub fn builder() -> SessionBuilder {
        SessionBuilder {
            config: SessionConfig {
                model: None,
                instructions: String::new(),
                tools: Vec::new(),
                tool_choice: ToolChoice::AUTO,
                modality: Modality::Audio,
                max_output_tokens: MaxOutputTokens::Inf(Inf::Inf),
                input_format: AudioFormat::pcm24k(),
                output_format: AudioFormat::pcm24k(),
                noise_reduction: None,
                transcription: None,
                turn_detection: Some(TurnDetection::server_vad()),
                voice: Voice::named("marin"),
                speed: 1.0,
            },
        }
    }

    /// Continue editing this config (e.g. a handoff changes instructions and tools).
    pub fn to_builder(&self) -> SessionBuilder {
        SessionBuilder {
            config: self.clone(),
        }
    }

    /// Format of the audio we append.
    pub fn input_format(&self) -> AudioFormat {
        self.input_format
    }

    /// Format of the audio deltas we receive.
    pub fn output_format(&self) -> AudioFormat {
        self.output_format
    }

    /// The configured turn detection; `None` means manual commit.
    pub fn turn_detection(&self) -> Option<&TurnDetection> {
        self.turn_detection.as_ref()
    }

    /// The voice.
    pub fn voice(&self) -> &Voice {
        &self.voice
    }

    /// The instructions.
    pub fn instructions(&self) -> &str {
        &self.instructions
    }

    /// The full GA session object. Nullable fields are sent as explicit `null` so a previous
    /// value cannot linger (protocol §2: only fields present are updated).
    pub fn session(&self) -> Session {
        Session {
            kind: SessionType::Realtime,
            model: self.model.clone(),
            output_modalities: Some(vec![self.modality]),
            instructions: Some(self.instructions.clone()),
            max_output_tokens: Some(self.max_output_tokens),
            audio: Some(SessionAudio {
                input: Some(AudioInput {
                    format: Some(self.input_format),
                    noise_reduction: Some(self.noise_reduction),
                    transcription: Some(self.transcription.clone()),
                    turn_detection: Some(self.turn_detection.clone()),
                }),
                output: Some(AudioOutput {
                    format: Some(self.output_format),
                    voice: Some(self.voice.clone()),
                    speed: Some(self.speed),
                }),
            }),
            tools: Some(self.tools.iter().cloned().map(Tool::Function).collect()),
            tool_choice: Some(self.tool_choice.clone()),
        }
    }

    /// `session.update` carrying the whole config.
    pub fn update_event(&self) -> ClientEvent {
        ClientEvent::SessionUpdate(SessionUpdate {
            event_id: None,
            session: self.session(),
        })
    }
}

impl TurnDetection {
    /// `server_vad` with the documented defaults (protocol §6) and both response flags on.
    pub fn server_vad() -> Self {
        Self::ServerVad {
            threshold: Some(0.5),
            prefix_padding_ms: Some(300),
            silence_duration_ms: Some(500),
            idle_timeout_ms: None,
            create_response: Some(true),
            interrupt_response: Some(true),
        }
    }

    /// `semantic_vad` with both response flags on.
    pub fn semantic_vad(eagerness: Eagerness) -> Self {
        Self::SemanticVad {
            eagerness: Some(eagerness),
            create_response: Some(true),
            interrupt_response: Some(true),
        }
    }
}

/// Builds a `SessionConfig`; `build` checks what the API would reject.
#[derive(Debug, Clone)]
pub struct SessionBuilder {
    config: SessionConfig,
}

impl SessionBuilder {
    /// `model`; it cannot change mid-session (protocol §2).
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.config.model = Some(model.into());
        self
    }

    /// The agent's instructions.
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.config.instructions = text.into();
        self
    }

    /// Replaces all tools.
    pub fn tools(mut self, tools: Vec<FunctionTool>) -> Self {
        self.config.tools = tools;
        self
    }

    /// Adds one tool.
    pub fn tool(mut self, tool: FunctionTool) -> Self {
        self.config.tools.push(tool);
        self
    }

    /// `tool_choice`.
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.config.tool_choice = choice;
        self
    }

    /// `output_modalities`: audio (with transcript) or text.
    pub fn output_modality(mut self, modality: Modality) -> Self {
        self.config.modality = modality;
        self
    }

    /// `max_output_tokens`.
    pub fn max_output_tokens(mut self, max: MaxOutputTokens) -> Self {
        self.config.max_output_tokens = max;
        self
    }

    /// `audio.input.format`: pcm 24 kHz, or G.711 pass-through as an operator option.
    pub fn input_format(mut self, format: AudioFormat) -> Self {
        self.config.input_format = format;
        self
    }

    /// `audio.output.format`.
    pub fn output_format(mut self, format: AudioFormat) -> Self {
        self.config.output_format = format;
        self
    }

    /// `audio.input.noise_reduction`; `None` is off.
    pub fn noise_reduction(mut self, nr: Option<NoiseReduction>) -> Self {
        self.config.noise_reduction = nr;
        self
    }

    /// `audio.input.transcription`; `None` is off.
    pub fn transcription(mut self, t: Option<Transcription>) -> Self {
        self.config.transcription = t;
        self
    }

    /// `audio.input.turn_detection`; `None` is manual commit + `response.create`.
    pub fn turn_detection(mut self, td: Option<TurnDetection>) -> Self {
        self.config.turn_detection = td;
        self
    }

    /// `audio.output.voice`.
    pub fn voice(mut self, voice: Voice) -> Self {
        self.config.voice = voice;
        self
    }

    /// `audio.output.speed`.
    pub fn speed(mut self, speed: f64) -> Self {
        self.config.speed = speed;
        self
    }

    /// Checks the config against the rules the API enforces.
    pub fn build(self) -> Result<SessionConfig, ConfigError> {
        let c = self.config;
        for f in [c.input_format, c.output_format] {
            if let AudioFormat::Pcm { rate } = f {
                if rate != PCM_RATE {
                    return Err(ConfigError::PcmRateNot24000(rate));
                }
            }
        }
        if let MaxOutputTokens::Limit(n) = c.max_output_tokens {
            if !(1..=4096).contains(&n) {
                return Err(ConfigError::MaxOutputTokens(n));
            }
        }
        if let Some(TurnDetection::ServerVad {
            threshold: Some(t), ..
        }) = c.turn_detection
        {
            if !(0.0..=1.0).contains(&t) {
                return Err(ConfigError::VadThreshold(t));
            }
        }
        if !(0.25..=1.5).contains(&c.speed) {
            return Err(ConfigError::Speed(c.speed));
        }
        let mut seen = std::collections::HashSet::new();
        for t in &c.tools {
            let ok = (1..=64).contains(&t.name.len())
                && t.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(ConfigError::ToolName(t.name.clone()));
            }
            if !seen.insert(t.name.as_str()) {
                return Err(ConfigError::DuplicateTool(t.name.clone()));
            }
        }
        if let ToolChoice::Function(f) = &c.tool_choice {
            if !seen.contains(f.name.as_str()) {
                return Err(ConfigError::UnknownToolChoice(f.name.clone()));
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn wire(c: &SessionConfig) -> Value {
        serde_json::from_str(&c.update_event().to_json().unwrap()).unwrap()
    }

    #[test]
    fn protocol_2_changing_instructions_still_sends_formats_and_voice() {
        let first = SessionConfig::builder()
            .instructions("router")
            .input_format(AudioFormat::Pcmu)
            .output_format(AudioFormat::Pcmu)
            .voice(Voice::named("cedar"))
            .build()
            .unwrap();
        let handoff = first
            .to_builder()
            .instructions("support")
            .tools(vec![FunctionTool::new(
                "lookup",
                "Look up",
                json!({"type":"object"}),
            )])
            .build()
            .unwrap();
        let w = wire(&handoff);
        assert_eq!(w["type"], "session.update");
        assert_eq!(w["session"]["type"], "realtime");
        assert_eq!(w["session"]["instructions"], "support");
        assert_eq!(
            w["session"]["audio"]["input"]["format"],
            json!({"type":"audio/pcmu"})
        );
        assert_eq!(
            w["session"]["audio"]["output"]["format"],
            json!({"type":"audio/pcmu"})
        );
        assert_eq!(w["session"]["audio"]["output"]["voice"], "cedar");
        assert_eq!(w["session"]["audio"]["output"]["speed"], 1.0);
        assert_eq!(
            w["session"]["audio"]["input"]["turn_detection"]["type"],
            "server_vad"
        );
        assert_eq!(w["session"]["tools"][0]["type"], "function");
    }

    #[test]
    fn protocol_2_nullable_fields_are_sent_as_null_not_omitted() {
        let c = SessionConfig::builder()
            .turn_detection(None)
            .build()
            .unwrap();
        let w = wire(&c);
        let input = &w["session"]["audio"]["input"];
        for k in ["turn_detection", "transcription", "noise_reduction"] {
            assert_eq!(input.get(k), Some(&Value::Null), "{k}");
        }
    }

    #[test]
    fn default_is_pcm24k_server_vad() {
        let w = wire(&SessionConfig::builder().build().unwrap());
        assert_eq!(
            w["session"]["audio"]["input"]["format"],
            json!({"type":"audio/pcm","rate":24000})
        );
        let td = &w["session"]["audio"]["input"]["turn_detection"];
        assert_eq!(td["threshold"], 0.5);
        assert_eq!(td["prefix_padding_ms"], 300);
        assert_eq!(td["create_response"], true);
        assert_eq!(w["session"]["output_modalities"], json!(["audio"]));
    }

    #[test]
    fn semantic_vad_carries_eagerness() {
        let c = SessionConfig::builder()
            .turn_detection(Some(TurnDetection::semantic_vad(Eagerness::High)))
            .build()
            .unwrap();
        let td = &wire(&c)["session"]["audio"]["input"]["turn_detection"];
        assert_eq!(td["type"], "semantic_vad");
        assert_eq!(td["eagerness"], "high");
    }

    #[test]
    fn build_rejects_what_the_api_rejects() {
        let b = SessionConfig::builder;
        assert_eq!(
            b().input_format(AudioFormat::Pcm { rate: 16000 }).build(),
            Err(ConfigError::PcmRateNot24000(16000))
        );
        assert_eq!(
            b().max_output_tokens(MaxOutputTokens::Limit(5000)).build(),
            Err(ConfigError::MaxOutputTokens(5000))
        );
        assert_eq!(b().speed(3.0).build(), Err(ConfigError::Speed(3.0)));
        let t = FunctionTool::new("a b", "", json!({}));
        assert!(matches!(b().tool(t).build(), Err(ConfigError::ToolName(_))));
        let t = FunctionTool::new("x", "", json!({}));
        assert!(matches!(
            b().tool(t.clone()).tool(t).build(),
            Err(ConfigError::DuplicateTool(_))
        ));
        assert!(matches!(
            b().tool_choice(ToolChoice::function("nope")).build(),
            Err(ConfigError::UnknownToolChoice(_))
        ));
        let vad = TurnDetection::ServerVad {
            threshold: Some(1.5),
            prefix_padding_ms: None,
            silence_duration_ms: None,
            idle_timeout_ms: None,
            create_response: None,
            interrupt_response: None,
        };
        assert_eq!(
            b().turn_detection(Some(vad)).build(),
            Err(ConfigError::VadThreshold(1.5))
        );
    }
}
