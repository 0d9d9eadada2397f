#![cfg(all(target_os = "linux", target_env = "gnu"))]
//! `--media-priority rt`: the media threads run SCHED_RR at the asked priority when the process
//! may (root or CAP_SYS_NICE), and fall back to the nice value when it may not. Its own test
//! binary: the engine's priority is set once per process, before the first call.

mod common;

use std::time::Duration;
use tokio::net::UdpSocket;

/// (policy, rt_priority, nice) of each of the engine's `media-N` threads: proc(5) fields 41,
/// 40 and 19.
fn media_threads() -> Vec<(u32, u32, i32)> {
    common::media_thread_stats()
        .iter()
        .map(|f| {
            (
                f[41 - 3].parse().unwrap(),
                f[40 - 3].parse().unwrap(),
                f[19 - 3].parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_threads_run_sched_rr_when_asked_and_allowed() {
    // Whether this process may make a thread real-time, asked of a scratch thread.
    let allowed = std::thread::spawn(|| {
        // SAFETY: a plain syscall on the calling (scratch) thread.
        let param = libc::sched_param { sched_priority: 1 };
        unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) == 0 }
    })
    .join()
    .unwrap();
    bridge::media::engine::set_realtime(7);
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (handle, _notes) = common::port_media(32140, caller.local_addr().unwrap(), None, 1);
    // The call's first packets: the engine's threads are up and pacing it.
    let mut buf = [0u8; 2048];
    let got = tokio::time::timeout(Duration::from_secs(5), caller.recv_from(&mut buf)).await;
    assert!(got.is_ok(), "the bridge's RTP");
    let threads = media_threads();
    handle.send(bridge::media::MediaCmd::Stop);
    assert!(!threads.is_empty(), "media threads found");
    const SCHED_RR: u32 = 2;
    if allowed {
        assert!(
            threads
                .iter()
                .all(|&(p, prio, _)| p == SCHED_RR && prio == 7),
            "{threads:?}"
        );
        assert_eq!(bridge::media::engine::realtime_in_effect(), Some(7));
    } else {
        // Refused: ordinary threads at the nice value they may have (0 when that is refused
        // too).
        assert!(threads.iter().all(|&(p, _, _)| p == 0), "{threads:?}");
        assert_eq!(bridge::media::engine::realtime_in_effect(), None);
    }
}
