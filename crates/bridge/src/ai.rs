//! One call's Realtime session: connects the call's audio port to a Realtime WebSocket
//! (the built-in simulator, or the API), streams the caller's 24 kHz frames as
//! `input_audio_buffer.append`, plays `response.output_audio.delta` through the playout
//! buffer, and on barge-in flushes playout and truncates the item at what was heard.
//! First slice of issue 5: plain ws:// only, no reconnect yet.

use crate::media::{MediaCmd, MediaHandle};
use codec::Frame;
use futures_util::{SinkExt, StreamExt};
use realtime::{ClientEvent, ServerEvent, SessionConfig, Tracker};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

/// Where and how to reach the Realtime side.
#[derive(Clone)]
pub struct AiSettings {
    pub url: String,
    /// Sent as `Authorization: Bearer`; never logged.
    pub api_key: Option<String>,
    pub instructions: String,
}

impl std::fmt::Debug for AiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiSettings")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Run the call's Realtime session until the call's media ends or the socket closes.
pub async fn run(
    settings: AiSettings,
    mut frames: mpsc::Receiver<Frame>,
    cmds: mpsc::Sender<MediaCmd>,
    call_id: String,
) {
    let mut request = match settings.url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => {
            warn!(%call_id, error = %e, "bad Realtime URL");
            return;
        }
    };
    if let Some(key) = &settings.api_key {
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {key}")) {
            request.headers_mut().insert("Authorization", v);
        }
    }
    let (ws, _) = match tokio_tungstenite::connect_async_with_config(
        request,
        Some(ws_config()),
        true,
    )
    .await
    {
        Ok(x) => x,
        Err(e) => {
            warn!(%call_id, error = %e, "Realtime connect failed; the call stays up silent");
            return;
        }
    };
    let (mut tx, mut rx) = ws.split();
    let config = match SessionConfig::builder()
        .instructions(settings.instructions.clone())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(%call_id, error = %e, "session config");
            return;
        }
    };
    let mut tracker = Tracker::new(&config);
    let update = config.update_event();
    tracker.on_client_event(&update);
    if let Ok(json) = update.to_json() {
        if tx.send(Message::text(json)).await.is_err() {
            return;
        }
    }
    info!(%call_id, url = %settings.url, "Realtime session open");
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else { break };
                let ev = ClientEvent::append(&frame_bytes(&frame));
                tracker.on_client_event(&ev);
                if let Ok(json) = ev.to_json() {
                    if tx.send(Message::text(json)).await.is_err() {
                        break;
                    }
                }
            }
            msg = rx.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let ev = match ServerEvent::parse(text.as_str()) {
                    Ok(ev) => ev,
                    Err(e) => {
                        debug!(%call_id, error = %e, "unparsable server event");
                        continue;
                    }
                };
                tracker.on_server_event(&ev);
                match &ev {
                    ServerEvent::OutputAudioDelta(d) => {
                        if let Ok(bytes) = d.decode_audio() {
                            let samples: Vec<i16> = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
                            let _ = cmds.send(MediaCmd::Play { item: d.item_id.as_str().into(), samples, last: false }).await;
                        }
                    }
                    ServerEvent::SpeechStarted(_) => {
                        // Barge-in: silence the caller's ear at once, then make the model's
                        // memory match what was heard.
                        let (rtx, rrx) = oneshot::channel();
                        let _ = cmds.send(MediaCmd::Flush(rtx)).await;
                        if let Ok(report) = rrx.await {
                            for (item, ms) in &report.played {
                                tracker.on_audio_played(item, u64::from(*ms));
                            }
                            if let Some(item) = tracker.playing_item().map(str::to_string) {
                                let played = report.played.iter().find(|(i, _)| **i == *item).map_or(0, |(_, ms)| u64::from(*ms));
                                if let Some(truncate) = tracker.truncate_for_barge_in(&item, played) {
                                    tracker.on_client_event(&truncate);
                                    if let Ok(json) = truncate.to_json() {
                                        let _ = tx.send(Message::text(json)).await;
                                    }
                                }
                            }
                        }
                    }
                    ServerEvent::Error(e) => warn!(%call_id, error = ?e.error, "Realtime error event"),
                    _ => {}
                }
            }
        }
    }
    info!(%call_id, "Realtime session closed");
}

/// Small buffers: thousands of calls each hold a socket (tungstenite's default reads into
/// 128 KiB per connection); bounded messages so a peer cannot make us buffer without limit.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(8 << 20))
        .max_frame_size(Some(8 << 20))
}

fn frame_bytes(frame: &Frame) -> Vec<u8> {
    frame.to_le_bytes()
}

/// Start the session for a call whose media just started; it ends with the call's media.
pub fn spawn(
    settings: AiSettings,
    media: &mut MediaHandle,
    call_id: String,
) -> Option<tokio::task::JoinHandle<()>> {
    let frames = media.frames.take()?;
    let cmds = media.commands();
    Some(tokio::spawn(run(settings, frames, cmds, call_id)))
}
