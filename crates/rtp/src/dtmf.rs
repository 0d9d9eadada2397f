//! RFC 4733 receive side: telephone-event packets into digits. One event is one timestamp
//! (2.5.1.3); the end bit closes it and its two retransmissions (2.5.1.4) are ignored.

use crate::packet::telephone_event::TelephoneEvent;

/// A digit the caller pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    pub digit: char,
    /// Duration in timestamp units, from the last packet seen.
    pub duration: u32,
    /// True if no end packet arrived (closed by the next event or stream change).
    pub inferred_end: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    /// Timestamp and state of the event in progress.
    current: Option<(u32, TelephoneEvent)>,
    /// Timestamp of the last event already reported, so repeated end packets count once.
    done_ts: Option<u32>,
}

impl DtmfReceiver {
    /// Feeds one event packet; returns a digit when one completes (at most two: a previous
    /// event whose end was lost, then this one).
    pub fn on_packet(
        &mut self,
        timestamp: u32,
        ev: TelephoneEvent,
    ) -> (Option<Digit>, Option<Digit>) {
        if self.done_ts == Some(timestamp) {
            return (None, None);
        }
        let mut closed = None;
        match self.current {
            Some((ts, _)) if ts == timestamp => {}
            Some(_) => closed = self.flush(),
            None => {}
        }
        // Keep the longest duration seen: updates may arrive out of order.
        let longest = match self.current {
            Some((ts, prev)) if ts == timestamp && prev.duration > ev.duration => TelephoneEvent {
                end: ev.end,
                ..prev
            },
            _ => ev,
        };
        self.current = Some((timestamp, longest));
        if ev.end {
            self.current = None;
            self.done_ts = Some(timestamp);
            let d = longest.digit().map(|digit| Digit {
                digit,
                duration: u32::from(longest.duration),
                inferred_end: false,
            });
            return (closed, d);
        }
        (closed, None)
    }

    /// Ends an event whose end packets were all lost (new SSRC, later event, audio resumed).
    pub fn flush(&mut self) -> Option<Digit> {
        let (ts, ev) = self.current.take()?;
        self.done_ts = Some(ts);
        ev.digit().map(|digit| Digit {
            digit,
            duration: u32::from(ev.duration),
            inferred_end: true,
        })
    }

    /// Audio with a timestamp past the event means the sender moved on (RFC 4733 2.5.2.2).
    pub fn on_audio(&mut self, timestamp: u32) -> Option<Digit> {
        let (ts, ev) = self.current?;
        let after = timestamp.wrapping_sub(ts) as i32;
        if after > i32::from(ev.duration) {
            self.flush()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> TelephoneEvent {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
    }

    #[test]
    fn rfc4733_2_5_1_4_three_end_packets_one_digit() {
        let mut r = DtmfReceiver::default();
        assert_eq!(r.on_packet(1000, ev(5, false, 160)), (None, None));
        assert_eq!(r.on_packet(1000, ev(5, false, 320)), (None, None));
        let (_, d) = r.on_packet(1000, ev(5, true, 800));
        assert_eq!(
            d,
            Some(Digit {
                digit: '5',
                duration: 800,
                inferred_end: false
            })
        );
        assert_eq!(r.on_packet(1000, ev(5, true, 800)), (None, None));
        assert_eq!(r.on_packet(1000, ev(5, true, 800)), (None, None));
    }

    #[test]
    fn rfc4733_2_5_1_3_same_digit_twice_is_two_events_by_timestamp() {
        let mut r = DtmfReceiver::default();
        assert!(r.on_packet(1000, ev(1, true, 800)).1.is_some());
        assert!(r.on_packet(3000, ev(1, true, 800)).1.is_some());
    }

    #[test]
    fn rfc4733_2_5_2_2_lost_end_packets_inferred() {
        let mut r = DtmfReceiver::default();
        r.on_packet(1000, ev(11, false, 480));
        let (closed, now) = r.on_packet(5000, ev(2, false, 160));
        assert_eq!(
            closed,
            Some(Digit {
                digit: '#',
                duration: 480,
                inferred_end: true
            })
        );
        assert_eq!(now, None);
        assert_eq!(r.on_audio(5000 + 100), None);
        assert_eq!(r.on_audio(5000 + 400).map(|d| d.digit), Some('2'));
    }

    #[test]
    fn rfc4733_2_5_2_1_reordered_update_keeps_longest_duration() {
        let mut r = DtmfReceiver::default();
        r.on_packet(1000, ev(7, false, 480));
        r.on_packet(1000, ev(7, false, 320));
        let (_, d) = r.on_packet(1000, ev(7, true, 400));
        assert_eq!(d.map(|d| d.duration), Some(480));
    }
}
