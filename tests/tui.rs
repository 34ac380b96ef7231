//! The TUI without a terminal: the pure update function driven by messages, the real
//! worker against the fixed-clock demo, and every view drawn into ratatui's TestBackend
//! and compared with insta snapshots (default and light themes, 100×30).

use mqscope::backend::{ConnectOptions, PeekFrom, PeekPage};
use mqscope::config::Target;
use mqscope::config::theme::Theme;
use mqscope::model::{Message, QueueKind, QueueSummary};
use mqscope::ops::trace::{Hop, HopKind, TraceEvent};
use mqscope::tui::keymap::{Key, KeyCode, Keymap};
use mqscope::tui::state::{Effect, InputKind, MAX_HOPS, PAGE, State, TracePhase, View};
use mqscope::tui::update::{Msg, update};
use mqscope::tui::worker::Worker;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

fn key(c: char) -> Msg {
    Msg::Key(Key::char(c))
}

fn special(code: KeyCode) -> Msg {
    Msg::Key(Key::plain(code))
}

fn fresh() -> State {
    let mut s = State::new("local", "local://demo", None, false, Keymap::default());
    update(&mut s, Msg::Resize(100, 30));
    s
}

fn queue(name: &str, messages: u64) -> QueueSummary {
    let mut q = QueueSummary::new(name, QueueKind::Queue, "classic");
    q.messages = Some(messages);
    q
}

/// A state with a connection and a loaded queue list, without any backend.
fn with_queues(names: &[(&str, u64)]) -> State {
    let mut s = fresh();
    let fx = update(
        &mut s,
        Msg::Connected {
            backend: "local".into(),
            target: "local://demo".into(),
            server: None,
            has_groups: true,
            has_exchanges: true,
        },
    );
    let Some(Effect::LoadQueues(req)) = fx.first().cloned() else {
        panic!("{fx:?}")
    };
    update(
        &mut s,
        Msg::QueuesLoaded {
            req,
            result: Ok(names.iter().map(|(n, c)| queue(n, *c)).collect()),
            at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            took_ms: 5,
        },
    );
    s
}

fn selected_name(s: &State) -> String {
    s.selected_queue()
        .map(|q| q.name.clone())
        .unwrap_or_default()
}

fn page(from: u64, n: usize) -> PeekPage {
    PeekPage {
        messages: (from..from + n as u64)
            .map(|i| Message::new("q", i, format!("m{i}")))
            .collect(),
        notes: Vec::new(),
    }
}

fn load_req(fx: &[Effect]) -> (u64, PeekFrom, usize) {
    fx.iter()
        .find_map(|e| match e {
            Effect::LoadMessages {
                req, from, limit, ..
            } => Some((*req, from.clone(), *limit)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no load in {fx:?}"))
}

// ---- pure updates ----

#[test]
fn navigation_stays_in_bounds_and_scrolls() {
    let names: Vec<(String, u64)> = (0..100).map(|i| (format!("q{i:03}"), i)).collect();
    let refs: Vec<(&str, u64)> = names.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let mut s = with_queues(&refs);
    update(&mut s, key('k'));
    assert_eq!(selected_name(&s), "q000");
    update(&mut s, key('j'));
    update(&mut s, special(KeyCode::Down));
    assert_eq!(selected_name(&s), "q002");
    update(&mut s, key('G'));
    assert_eq!(selected_name(&s), "q099");
    assert!(s.queues.cursor.offset > 0 && s.queues.cursor.offset + s.list_rows() > 99);
    update(&mut s, Msg::Key(Key::ctrl('u')));
    assert_eq!(s.queues.cursor.selected, 99 - s.list_rows());
    update(&mut s, key('g'));
    assert_eq!((s.queues.cursor.selected, s.queues.cursor.offset), (0, 0));
    update(&mut s, Msg::Scroll(3));
    assert_eq!(s.queues.cursor.selected, 3);
}

#[test]
fn filter_by_text_and_regex_then_clear() {
    let mut s = with_queues(&[
        ("billing", 1),
        ("billing.dlq", 2),
        ("email", 3),
        ("email.dlq", 4),
    ]);
    update(&mut s, key('/'));
    assert_eq!(s.input.as_ref().map(|i| i.kind), Some(InputKind::Filter));
    for c in "DLQ".chars() {
        update(&mut s, key(c));
    }
    assert_eq!(
        s.queues.visible.len(),
        2,
        "live filtering while typing, case-insensitive"
    );
    update(&mut s, special(KeyCode::Enter));
    assert!(s.input.is_none());
    assert_eq!(s.queues.filter, "DLQ");
    update(&mut s, key('/'));
    for _ in 0..3 {
        update(&mut s, special(KeyCode::Backspace));
    }
    for c in "^e.*q$".chars() {
        update(&mut s, key(c));
    }
    assert_eq!(s.queues.visible.len(), 1);
    assert_eq!(selected_name(&s), "email.dlq");
    update(&mut s, special(KeyCode::Esc));
    assert_eq!(s.queues.visible.len(), 4, "Esc clears the filter");
    // An invalid regex falls back to plain text instead of failing.
    update(&mut s, key('/'));
    update(&mut s, key('('));
    assert_eq!(s.queues.visible.len(), 0);
}

#[test]
fn sort_keeps_the_selection() {
    let mut s = with_queues(&[("a", 5), ("b", 50), ("c", 1)]);
    update(&mut s, key('j'));
    assert_eq!(selected_name(&s), "b");
    update(&mut s, key('s'));
    update(&mut s, key('s'));
    assert_eq!(s.queues.extra.sort.label(), "messages");
    let order: Vec<&str> = s
        .queues
        .visible
        .iter()
        .map(|i| s.queues.list[*i].name.as_str())
        .collect();
    assert_eq!(order, vec!["b", "a", "c"]);
    assert_eq!(selected_name(&s), "b");
    update(&mut s, key('S'));
    let order: Vec<&str> = s
        .queues
        .visible
        .iter()
        .map(|i| s.queues.list[*i].name.as_str())
        .collect();
    assert_eq!(order, vec!["c", "a", "b"]);
}

#[test]
fn paging_loads_on_demand_and_keeps_memory_bounded() {
    let mut s = with_queues(&[("q", 1_000_000)]);
    let fx = update(&mut s, special(KeyCode::Enter));
    assert_eq!(s.view(), View::Messages);
    let (req, from, limit) = load_req(&fx);
    assert_eq!((from, limit), (PeekFrom::Start, PAGE));
    // A stale reply (wrong id) is dropped.
    update(
        &mut s,
        Msg::MessagesLoaded {
            req: req + 100,
            result: Ok(page(500, 5)),
        },
    );
    assert!(s.messages.window.is_empty());
    update(
        &mut s,
        Msg::MessagesLoaded {
            req,
            result: Ok(page(0, PAGE)),
        },
    );
    assert_eq!(s.messages.window.len(), PAGE);
    // Scrolling towards the end asks for the next page, once.
    let mut loads = Vec::new();
    for _ in 0..PAGE {
        loads.extend(update(&mut s, key('j')));
    }
    let (req, from, _) = load_req(&loads);
    assert_eq!(from, PeekFrom::Position(PAGE as u64));
    assert_eq!(loads.len(), 1, "one request in flight at a time");
    update(
        &mut s,
        Msg::MessagesLoaded {
            req,
            result: Ok(page(PAGE as u64, PAGE)),
        },
    );
    assert_eq!(s.messages.window.len(), 2 * PAGE);
    // Keep scrolling far: the window never holds more than its cap.
    let mut next = 2 * PAGE as u64;
    for _ in 0..40 {
        let mut fx = Vec::new();
        for _ in 0..PAGE {
            fx.extend(update(&mut s, special(KeyCode::Down)));
        }
        if let Some(Effect::LoadMessages { req, from, .. }) = fx.into_iter().next() {
            assert_eq!(from, PeekFrom::Position(next));
            update(
                &mut s,
                Msg::MessagesLoaded {
                    req,
                    result: Ok(page(next, PAGE)),
                },
            );
            next += PAGE as u64;
        }
        assert!(s.messages.window.len() <= mqscope::tui::state::MAX_WINDOW);
    }
    let selected = s.selected_message().unwrap().position;
    assert!(selected > 5_000, "scrolled to {selected}");
    // Going back up loads the previous page in front of the window.
    let first = s.messages.window[0].position;
    let mut fx = Vec::new();
    while s.messages.cursor.selected > 10 {
        fx.extend(update(&mut s, key('k')));
    }
    let (req, from, limit) = load_req(&fx);
    assert_eq!(from, PeekFrom::Position(first - PAGE as u64));
    update(
        &mut s,
        Msg::MessagesLoaded {
            req,
            result: Ok(page(first - PAGE as u64, limit)),
        },
    );
    assert_eq!(s.messages.window[0].position, first - PAGE as u64);
    assert_eq!(
        s.selected_message().unwrap().position,
        first + 10,
        "selection stays on the same message"
    );
}

#[test]
fn jump_to_the_end_and_back() {
    let mut s = with_queues(&[("q", 10_000)]);
    let fx = update(&mut s, special(KeyCode::Enter));
    let (req, _, _) = load_req(&fx);
    update(
        &mut s,
        Msg::MessagesLoaded {
            req,
            result: Ok(page(0, PAGE)),
        },
    );
    let fx = update(&mut s, key('G'));
    let (req, from, _) = load_req(&fx);
    assert_eq!(from, PeekFrom::Last);
    update(
        &mut s,
        Msg::MessagesLoaded {
            req,
            result: Ok(page(10_000 - PAGE as u64, PAGE)),
        },
    );
    assert_eq!(s.selected_message().unwrap().position, 9_999);
    let fx = update(&mut s, key('g'));
    assert_eq!(load_req(&fx).1, PeekFrom::Start);
}

#[test]
fn command_line_opens_queues_with_completion() {
    let mut s = with_queues(&[("billing", 1), ("billing.dlq", 2), ("email", 3)]);
    update(&mut s, key(':'));
    for c in "q bil".chars() {
        update(&mut s, key(c));
    }
    update(&mut s, special(KeyCode::Tab));
    assert_eq!(s.input.as_ref().unwrap().text, "q billing");
    for c in ".dlq".chars() {
        update(&mut s, key(c));
    }
    let fx = update(&mut s, special(KeyCode::Enter));
    assert_eq!(s.view(), View::Messages);
    assert_eq!(s.messages.queue, "billing.dlq");
    assert!(matches!(fx[0], Effect::LoadMessages { .. }));
    update(&mut s, key(':'));
    for c in "bogus".chars() {
        update(&mut s, key(c));
    }
    update(&mut s, special(KeyCode::Enter));
    assert!(
        s.status
            .error
            .as_deref()
            .unwrap()
            .contains("unknown command")
    );
    update(&mut s, key(':'));
    for c in "offset 42".chars() {
        update(&mut s, key(c));
    }
    let fx = update(&mut s, special(KeyCode::Enter));
    assert_eq!(load_req(&fx).1, PeekFrom::Position(42));
}

/// A command line longer than the screen shows its end, where the typing is, and Enter
/// runs it; the error that echoes it back is cut short so its advice stays on screen.
#[test]
fn a_command_line_longer_than_the_screen_shows_its_end_and_runs() {
    let mut s = with_queues(&[("billing", 1)]);
    update(&mut s, key(':'));
    let long = format!("{}-end", "x".repeat(5_000));
    for c in long.chars() {
        update(&mut s, key(c));
    }
    let shown = screen(&s);
    let input = shown.lines().nth(27).unwrap();
    assert!(input.starts_with(":…x"), "{input}");
    assert!(input.trim_end().ends_with("xx-end█"), "{input}");
    assert_eq!(input.chars().count(), 100);
    update(&mut s, special(KeyCode::Enter));
    assert!(s.input.is_none());
    let error = s.status.error.clone().unwrap();
    assert!(error.starts_with("unknown command :xxx"), "{error}");
    assert!(error.len() < 200, "{error}");
    assert!(error.contains("(try :queues"), "{error}");
    // A long queue name is cut short the same way.
    update(&mut s, key(':'));
    for c in format!("q {long}").chars() {
        update(&mut s, key(c));
    }
    update(&mut s, special(KeyCode::Enter));
    let error = s.status.error.clone().unwrap();
    assert!(
        error.starts_with("no queue or topic named \"xxx"),
        "{error}"
    );
    assert!(error.len() < 200, "{error}");
}

fn corr_page(queue: &str, from: u64, ids: &[&str]) -> PeekPage {
    PeekPage {
        messages: ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let mut m = Message::new(queue, from + i as u64, format!("m{i}"));
                if !id.is_empty() {
                    m.properties.correlation_id = Some(id.to_string());
                }
                m
            })
            .collect(),
        notes: Vec::new(),
    }
}

fn hop_at(queue: &str, position: u64, secs: i64) -> Hop {
    Hop {
        queue: queue.into(),
        kind: HopKind::Queue,
        position: Some(position),
        partition: None,
        offset: None,
        timestamp: None,
        exchange: Some("orders".into()),
        routing_key: Some("order.created".into()),
        message_id: Some("m1".into()),
        dead_letter: None,
        replayed_from: None,
        replay_count: None,
        live: false,
        routed_queues: None,
        groups: Vec::new(),
        deliveries: Vec::new(),
        recorded: None,
        key: None,
        time: chrono::DateTime::from_timestamp(secs, 0),
        published: chrono::DateTime::from_timestamp(100, 0),
    }
}

/// The screen as text, for states built without a worker.
fn screen(s: &State) -> String {
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    term.draw(|f| mqscope::tui::ui::draw(f, s, &Theme::default_theme()))
        .unwrap();
    let buf = term.backend().buffer();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn trace_req(fx: &[Effect]) -> (u64, String) {
    fx.iter()
        .find_map(|e| match e {
            Effect::Trace { req, id } => Some((*req, id.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no trace in {fx:?}"))
}

#[test]
fn t_traces_the_message_streams_hits_and_enter_jumps_to_a_hop() {
    let mut s = with_queues(&[("billing", 100), ("email", 100)]);
    let fx = update(&mut s, special(KeyCode::Enter));
    let (req, _, _) = load_req(&fx);
    update(
        &mut s,
        Msg::MessagesLoaded {
            req,
            result: Ok(corr_page("billing", 0, &["", "ORD-1"])),
        },
    );
    // A message without an ID says so and stays put.
    assert!(update(&mut s, key('t')).is_empty());
    assert!(
        s.status
            .error
            .as_deref()
            .unwrap()
            .contains("no correlation ID")
    );
    assert_eq!(s.view(), View::Messages);
    update(&mut s, key('j'));
    update(&mut s, special(KeyCode::Enter));
    assert_eq!(s.view(), View::Message);
    let fx = update(&mut s, key('t'));
    let (req, id) = trace_req(&fx);
    assert_eq!(id, "ORD-1");
    assert_eq!(s.view(), View::Trace);
    assert_eq!(s.trace.phase, TracePhase::Scanning);

    // Hits arrive out of order and are kept in time order; a stale reply is dropped.
    let ev = |req, event| Msg::TraceEvent { req, event };
    update(&mut s, ev(req, TraceEvent::Started { queues: 2 }));
    update(
        &mut s,
        ev(req, TraceEvent::Hit(Box::new(hop_at("email", 7, 101)))),
    );
    update(
        &mut s,
        ev(req + 99, TraceEvent::Hit(Box::new(hop_at("stale", 0, 1)))),
    );
    update(
        &mut s,
        ev(req, TraceEvent::Hit(Box::new(hop_at("billing", 1, 100)))),
    );
    update(
        &mut s,
        Msg::TraceProgress {
            req,
            scanned: 150,
            elapsed_ms: 10,
        },
    );
    update(
        &mut s,
        ev(
            req,
            TraceEvent::QueueDone {
                queue: "email".into(),
                skipped: None,
            },
        ),
    );
    let places: Vec<String> = s.trace.hops.iter().map(|h| h.place()).collect();
    assert_eq!(places, vec!["billing#1", "email#7"]);
    assert_eq!(
        (s.trace.queues_total, s.trace.queues_done, s.trace.scanned),
        (2, 1, 150)
    );
    // One publish: a root and its two copies.
    assert_eq!(s.trace.rows.len(), 3);
    let done = |hops: Vec<Hop>| mqscope::ops::trace::Trace {
        correlation_id: "ORD-1".into(),
        scanned: 200,
        queues_scanned: 2,
        hops,
        skipped: Vec::new(),
        notes: Vec::new(),
        elapsed_ms: 12,
        ..Default::default()
    };
    update(
        &mut s,
        Msg::TraceDone {
            req: req + 99,
            result: Ok(Box::new(done(Vec::new()))),
        },
    );
    assert_eq!(
        s.trace.phase,
        TracePhase::Scanning,
        "a stale result is dropped"
    );
    update(
        &mut s,
        Msg::TraceDone {
            req,
            result: Ok(Box::new(done(vec![
                hop_at("billing", 1, 100),
                hop_at("email", 7, 101),
            ]))),
        },
    );
    assert_eq!(s.trace.phase, TracePhase::Done);
    assert_eq!((s.trace.hops.len(), s.trace.scanned), (2, 200));
    update(&mut s, special(KeyCode::Esc));
    assert_eq!(s.view(), View::Message, "Esc on a finished trace goes back");
    // Open it again with :trace and jump to the email copy.
    update(&mut s, key(':'));
    for c in "trace ORD-1".chars() {
        update(&mut s, key(c));
    }
    let fx = update(&mut s, special(KeyCode::Enter));
    let (req, _) = trace_req(&fx);
    assert_eq!(s.view(), View::Trace);
    update(
        &mut s,
        Msg::TraceDone {
            req,
            result: Ok(Box::new(done(vec![
                hop_at("billing", 1, 100),
                hop_at("email", 7, 101),
            ]))),
        },
    );
    update(&mut s, key('G'));
    assert_eq!(s.selected_hop().unwrap().queue, "email");
    let fx = update(&mut s, special(KeyCode::Enter));
    let Some(Effect::LoadMessages {
        req,
        queue,
        from,
        partition,
        ..
    }) = fx.first().cloned()
    else {
        panic!("{fx:?}")
    };
    assert_eq!(
        (queue.as_str(), from, partition),
        ("email", PeekFrom::Position(0), None)
    );
    assert_eq!(s.view(), View::Messages);
    assert_eq!(
        s.stack,
        vec![View::Queues, View::Trace, View::Messages],
        "the old messages views are replaced, the trace stays underneath"
    );
    let ids: Vec<&str> = (0..10)
        .map(|i| if i == 7 { "ORD-1" } else { "x" })
        .collect();
    update(
        &mut s,
        Msg::MessagesLoaded {
            req,
            result: Ok(corr_page("email", 0, &ids)),
        },
    );
    assert_eq!(s.view(), View::Message, "the hop's message opens");
    assert_eq!(s.message.msg.as_ref().unwrap().position, 7);
    update(&mut s, special(KeyCode::Esc));
    assert_eq!(s.selected_message().unwrap().position, 7);
    update(&mut s, special(KeyCode::Esc));
    assert_eq!(s.view(), View::Trace);

    // A queue that moved: the message at the position carries another ID.
    let fx = update(&mut s, special(KeyCode::Enter));
    let (req, _, _) = load_req(&fx);
    update(
        &mut s,
        Msg::MessagesLoaded {
            req,
            result: Ok(corr_page("email", 0, &["x"; 10])),
        },
    );
    assert_eq!(s.view(), View::Messages);
    assert!(
        s.status.info.as_deref().unwrap().contains("moved"),
        "{:?}",
        s.status
    );
}

/// The expected routes under the tree, each fate with the fact it rests on, in time order:
/// what was found or dead-lettered at its time, the rest as gaps that say so.
#[test]
fn trace_routes_show_every_fate_in_time_order_with_the_gaps_named() {
    use mqscope::model::routing::{Destination, Leg, Matched};
    use mqscope::ops::trace::routes::{Fate, RouteBasis, Scope, TOPOLOGY_NOW, fates, sighting_of};
    let at = |s: i64| chrono::DateTime::from_timestamp(s, 0);
    let message = |queue: &str, position: u64| {
        let mut m = Message::new(queue, position, bytes::Bytes::new());
        m.exchange = Some("orders".into());
        m.routing_key = Some("order.created".into());
        m.timestamp = at(100);
        m.properties.message_id = Some("m1".into());
        m
    };
    let mut dead = message("billing.dlq", 3);
    dead.exchange = Some("orders.dlx".into());
    mqscope::model::death::record_death(
        &mut dead.headers,
        &mqscope::model::death::DeathEvent {
            queue: "billing",
            reason: mqscope::model::DeathReason::Rejected,
            exchange: "orders",
            routing_keys: &["order.created".to_string()],
            time_secs: 105,
            original_expiration: None,
        },
    );
    let msgs = [message("analytics", 12), dead];
    let hops: Vec<Hop> = msgs
        .iter()
        .map(|m| mqscope::ops::trace::hop_of(m, HopKind::Queue))
        .collect();
    let sightings: Vec<_> = msgs.iter().map(sighting_of).collect();
    let with = |name: &str, consumers: u64| {
        let mut q = queue(name, 1);
        q.consumers = Some(consumers);
        q
    };
    let mut email = with("email", 0);
    email.message_ttl_ms = Some(60_000);
    let mut audit = with("audit", 0);
    audit.max_length = Some(10);
    let queues = vec![
        with("analytics", 0),
        with("billing", 2),
        with("billing.dlq", 0),
        with("shipping", 1),
        email,
        audit,
    ];
    let everywhere = |_: &str| true;
    let scope = Scope {
        queues: &queues,
        searched: &everywhere,
        skipped: &[],
        complete: true,
        now: at(700).unwrap(),
    };
    let routed: Vec<Destination> = ["billing", "shipping", "email", "analytics", "audit", "gone"]
        .into_iter()
        .map(|q| Destination {
            queue: q.into(),
            path: vec![Leg {
                exchange: "orders".into(),
                matched: Matched::Fanout,
            }],
        })
        .collect();
    let routes = fates(&routed, &hops, &sightings, &sightings[0], &scope);
    let got: Vec<Fate> = routes.iter().map(|r| r.fate).collect();
    assert_eq!(
        got,
        [
            Fate::Found,
            Fate::DeadLettered,
            Fate::Consumed,
            Fate::Expired,
            Fate::Dropped,
            Fate::Removed
        ]
    );

    let mut s = with_queues(&[("analytics", 1)]);
    update(&mut s, key(':'));
    for c in "trace m1".chars() {
        update(&mut s, key(c));
    }
    let (req, _) = trace_req(&update(&mut s, special(KeyCode::Enter)));
    update(
        &mut s,
        Msg::TraceDone {
            req,
            result: Ok(Box::new(mqscope::ops::trace::Trace {
                correlation_id: "m1".into(),
                scanned: 20,
                queues_scanned: 6,
                hops,
                elapsed_ms: 42,
                routes,
                routes_basis: Some(RouteBasis {
                    exchange: "orders".into(),
                    routing_keys: vec!["order.created".into()],
                }),
                routes_notes: vec![
                    TOPOLOGY_NOW.into(),
                    "exchange \"hash\" is of type x-consistent-hash, whose choice of queue cannot be worked out".into(),
                ],
                ..Default::default()
            })),
        },
    );
    let text = screen(&s);
    for shown in [
        "expected routes of the publish to orders / order.created (topology as it is now)",
        "+0.000s  ✓ analytics",
        "+5.000s  ✗ billing     dead-lettered (rejected) → billing.dlq#3",
        "no time  ? shipping    consumed? not in the queue; 1 consumer; when is not recorded",
        "no time  ? email       expired? not in the queue; time to live 60 s",
        "no time  ? audit       dropped? not in the queue; max-length 10",
        "no time  ? gone        removed: the queue no longer exists",
        "x-consistent-hash",
    ] {
        assert!(text.contains(shown), "{shown}\n{text}");
    }
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    term.draw(|f| mqscope::tui::ui::draw(f, &s, &Theme::default_theme()))
        .unwrap();
    insta::assert_snapshot!("trace_routes", format!("{:?}", term.backend().buffer()));
}

#[test]
fn an_id_on_thousands_of_messages_keeps_the_view_bounded_and_quick() {
    let mut s = with_queues(&[("audit", 10_000)]);
    update(&mut s, key(':'));
    for c in "trace common".chars() {
        update(&mut s, key(c));
    }
    let (req, _) = trace_req(&update(&mut s, special(KeyCode::Enter)));
    let started = std::time::Instant::now();
    let extra = 25;
    // Newest first, so every hit lands in front of the others.
    for i in (0..(MAX_HOPS + extra) as u64).rev() {
        let mut h = hop_at("audit", i, 1_000 + i as i64);
        h.message_id = Some(format!("m{i}"));
        update(
            &mut s,
            Msg::TraceEvent {
                req,
                event: TraceEvent::Hit(Box::new(h)),
            },
        );
    }
    update(
        &mut s,
        Msg::TraceProgress {
            req,
            scanned: 10_000,
            elapsed_ms: 100,
        },
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?} for {} hits",
        started.elapsed(),
        MAX_HOPS + extra
    );
    assert_eq!(
        (s.trace.hops.len(), s.trace.dropped),
        (MAX_HOPS, extra as u64)
    );
    assert_eq!(
        s.trace.rows.len(),
        2 * MAX_HOPS,
        "rows caught up with the hops"
    );
    assert!(
        s.trace.hops.windows(2).all(|w| w[0].time <= w[1].time),
        "time order"
    );
    update(&mut s, key('G'));
    assert!(s.selected_hop().is_some());
    let text = screen(&s);
    assert!(text.contains("25 more hops not shown"), "{text}");
}

/// A topic record's consumer groups hang under it, consumed or pending; a delivery the
/// live follow saw is a hop of its own, saying who picked the message up.
#[test]
fn trace_shows_consumer_groups_under_a_record_and_deliveries_as_hops() {
    use mqscope::model::{Delivery, GroupProgress, GroupStatus};
    let mut s = with_queues(&[("billing", 1)]);
    update(&mut s, key(':'));
    for c in "trace ORD-1".chars() {
        update(&mut s, key(c));
    }
    let (req, _) = trace_req(&update(&mut s, special(KeyCode::Enter)));
    let mut rec = hop_at("payments", 0, 102);
    rec.kind = HopKind::Topic;
    rec.position = None;
    rec.partition = Some(2);
    rec.offset = Some(41);
    rec.exchange = None;
    rec.routing_key = None;
    rec.groups = vec![
        GroupProgress {
            group: "payments-audit".into(),
            status: GroupStatus::Consumed,
            committed: Some(42),
            lag: Some(3),
        },
        GroupProgress {
            group: "payments-processor".into(),
            status: GroupStatus::Pending,
            committed: Some(40),
            lag: Some(5),
        },
    ];
    let done = mqscope::ops::trace::Trace {
        correlation_id: "ORD-1".into(),
        scanned: 20,
        queues_scanned: 2,
        hops: vec![hop_at("billing", 0, 100), rec],
        skipped: Vec::new(),
        notes: Vec::new(),
        elapsed_ms: 3,
        ..Default::default()
    };
    update(
        &mut s,
        Msg::TraceDone {
            req,
            result: Ok(Box::new(done)),
        },
    );
    let fx = update(&mut s, key('f'));
    let Some(Effect::Follow { req: follow, .. }) = fx.first().cloned() else {
        panic!("{fx:?}")
    };
    let mut picked = hop_at("billing", 0, 101);
    picked.position = None;
    picked.live = true;
    picked.deliveries = vec![Delivery {
        queue: "billing".into(),
        at: chrono::DateTime::from_timestamp(101, 0).unwrap(),
        redelivered: false,
        user: Some("billing-svc".into()),
        connection: Some("10.0.0.7:50412 -> 10.0.0.2:5672".into()),
        channel: Some(1),
        node: Some("rabbit@mq1".into()),
    }];
    update(
        &mut s,
        Msg::FollowHop {
            req: follow,
            result: Ok(Box::new(picked)),
        },
    );
    let shown = screen(&s);
    assert!(
        shown.contains(
            "picked up from billing by user billing-svc, redelivered: no  on connection 10.0."
        ),
        "{shown}"
    );
    assert!(
        shown.contains("✓ consumed by payments-audit (committed 42, lag 3)"),
        "{shown}"
    );
    assert!(
        shown.contains("… pending in payments-processor (committed 40, lag 5)"),
        "{shown}"
    );
    insta::assert_snapshot!("trace_groups_and_deliveries", shown);
    // Enter on the delivery: nothing stored to open, and the status line says why.
    let row = s
        .trace
        .rows
        .iter()
        .position(|r| !s.trace.hops[r.hop].deliveries.is_empty())
        .unwrap();
    s.trace.cursor.selected = row;
    update(&mut s, special(KeyCode::Enter));
    assert_eq!(s.view(), View::Trace);
    assert!(
        s.status
            .info
            .as_deref()
            .unwrap_or("")
            .contains("handed to a consumer"),
        "{:?}",
        s.status
    );
}

#[test]
fn esc_cancels_a_running_trace_and_leaving_stops_the_follow() {
    let mut s = with_queues(&[("billing", 1)]);
    update(&mut s, key(':'));
    for c in "trace abc".chars() {
        update(&mut s, key(c));
    }
    let (req, id) = trace_req(&update(&mut s, special(KeyCode::Enter)));
    assert_eq!(id, "abc");
    update(
        &mut s,
        Msg::TraceEvent {
            req,
            event: TraceEvent::Hit(Box::new(hop_at("billing", 0, 100))),
        },
    );
    update(
        &mut s,
        Msg::TraceEvent {
            req,
            event: TraceEvent::Started { queues: 3 },
        },
    );
    update(
        &mut s,
        Msg::TraceProgress {
            req,
            scanned: 15_000,
            elapsed_ms: 500,
        },
    );
    let text = screen(&s);
    assert!(
        text.contains("scanning… 15,000 messages in 0/3 queues, 30,000 msg/s; 1 hops so far"),
        "{text}"
    );
    assert!(
        text.contains("billing#0"),
        "hits show while scanning: {text}"
    );
    let fx = update(&mut s, special(KeyCode::Esc));
    assert_eq!(fx, vec![Effect::CancelTrace(req)]);
    assert!(
        screen(&s).contains("(cancelled after 15,000 messages"),
        "{}",
        screen(&s)
    );
    assert_eq!(s.view(), View::Trace, "the first Esc only cancels");
    assert_eq!(s.trace.phase, TracePhase::Cancelled);
    // What the scan sends after the cancel is stale.
    update(
        &mut s,
        Msg::TraceEvent {
            req,
            event: TraceEvent::Hit(Box::new(hop_at("billing", 5, 200))),
        },
    );
    update(
        &mut s,
        Msg::TraceDone {
            req,
            result: Err("late".into()),
        },
    );
    assert_eq!(s.trace.hops.len(), 1);
    assert_eq!(s.trace.phase, TracePhase::Cancelled);

    // f follows live, hops append, f again stops; leaving the view stops it too.
    let fx = update(&mut s, key('f'));
    let Some(Effect::Follow { req: follow, id }) = fx.first().cloned() else {
        panic!("{fx:?}")
    };
    assert_eq!(id, "abc");
    let mut live = hop_at("payments", 0, 300);
    live.kind = HopKind::Topic;
    live.partition = Some(1);
    live.offset = Some(9);
    live.position = None;
    live.live = true;
    for _ in 0..2 {
        update(
            &mut s,
            Msg::FollowHop {
                req: follow,
                result: Ok(Box::new(live.clone())),
            },
        );
    }
    assert_eq!(s.trace.hops.len(), 2, "the same record once");
    assert!(s.trace.hops[1].live);
    // A live publish whose queues the broker named (RabbitMQ's firehose) shows them.
    let mut routed = hop_at("orders", 0, 301);
    routed.kind = HopKind::Exchange;
    routed.position = None;
    routed.live = true;
    routed.routed_queues = Some(vec!["billing".into(), "shipping".into()]);
    update(
        &mut s,
        Msg::FollowHop {
            req: follow,
            result: Ok(Box::new(routed)),
        },
    );
    let shown = screen(&s);
    assert!(shown.contains("→ billing, shipping"), "{shown}");
    update(
        &mut s,
        Msg::FollowHop {
            req: follow,
            result: Err("fell behind".into()),
        },
    );
    assert!(s.status.error.as_deref().unwrap().contains("fell behind"));
    assert_eq!(update(&mut s, key('f')), vec![Effect::StopFollow(follow)]);
    let fx = update(&mut s, key('f'));
    let Some(Effect::Follow { req: follow, .. }) = fx.first().cloned() else {
        panic!("{fx:?}")
    };
    let fx = update(&mut s, special(KeyCode::Esc));
    assert_eq!(s.view(), View::Queues);
    assert!(fx.contains(&Effect::StopFollow(follow)), "{fx:?}");
    // A new trace from the command line while one runs cancels the old one.
    update(&mut s, key(':'));
    for c in "trace one".chars() {
        update(&mut s, key(c));
    }
    let (first, _) = trace_req(&update(&mut s, special(KeyCode::Enter)));
    update(&mut s, key(':'));
    for c in "trace two".chars() {
        update(&mut s, key(c));
    }
    let fx = update(&mut s, special(KeyCode::Enter));
    assert!(fx.contains(&Effect::CancelTrace(first)), "{fx:?}");
    assert_eq!(s.stack.iter().filter(|v| **v == View::Trace).count(), 1);
    // Going to the queue list from anywhere stops the scan.
    let (second, _) = trace_req(&fx);
    update(&mut s, key(':'));
    for c in "queues".chars() {
        update(&mut s, key(c));
    }
    let fx = update(&mut s, special(KeyCode::Enter));
    assert!(fx.contains(&Effect::CancelTrace(second)), "{fx:?}");
}

#[test]
fn lost_connection_backs_off_and_recovers() {
    let mut s = with_queues(&[("a", 1)]);
    let mut loads = Vec::new();
    for _ in 0..2 {
        loads.extend(update(&mut s, Msg::Tick));
    }
    let Some(Effect::LoadQueues(req)) = loads.first().cloned() else {
        panic!("{loads:?}")
    };
    update(
        &mut s,
        Msg::QueuesLoaded {
            req,
            result: Err("connection reset".into()),
            at: chrono::Utc::now(),
            took_ms: 5,
        },
    );
    assert!(matches!(
        s.status.conn,
        mqscope::tui::state::Conn::Lost { failures: 1, .. }
    ));
    assert_eq!(s.queues.list.len(), 1, "the last list stays on screen");
    let fx = update(&mut s, Msg::Tick);
    assert!(fx.is_empty(), "waits before retrying");
    let mut retry = Vec::new();
    for _ in 0..3 {
        retry.extend(update(&mut s, Msg::Tick));
    }
    let Some(Effect::LoadQueues(req)) = retry.first().cloned() else {
        panic!("{retry:?}")
    };
    update(
        &mut s,
        Msg::QueuesLoaded {
            req,
            result: Ok(vec![queue("a", 2)]),
            at: chrono::Utc::now(),
            took_ms: 5,
        },
    );
    assert_eq!(s.status.conn, mqscope::tui::state::Conn::Connected);
    assert!(s.status.error.is_none());
}

#[test]
fn a_slow_listing_slows_the_refresh_and_says_so() {
    let mut s = with_queues(&[("a", 1)]);
    s.width = 100;
    s.height = 30;
    let ticks = |s: &mut State, n: usize| -> usize {
        (0..n)
            .flat_map(|_| update(s, Msg::Tick))
            .filter(|e| matches!(e, Effect::LoadQueues(_)))
            .count()
    };
    // Fast listings: one every refresh interval (2 s).
    assert_eq!(s.refresh_secs, 2);
    assert_eq!(ticks(&mut s, 4), 1);
    let Some(req) = s.queues.pending.req() else {
        panic!("a listing under way")
    };
    // One that took the broker 3 s: the next starts 12 s after it came back, not 2.
    update(
        &mut s,
        Msg::QueuesLoaded {
            req,
            result: Ok(vec![queue("a", 2)]),
            at: chrono::Utc::now(),
            took_ms: 3_000,
        },
    );
    assert_eq!(ticks(&mut s, 11), 0);
    assert_eq!(ticks(&mut s, 2), 1);
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    term.draw(|f| mqscope::tui::ui::draw(f, &s, &Theme::default_theme()))
        .unwrap();
    let buf = term.backend().buffer();
    let top: String = (0..100).map(|x| buf[(x, 1)].symbol()).collect();
    assert!(top.contains("every 15s (listing takes 3.0s)"), "{top}");
    // Ctrl-R lists at once all the same.
    s.queues.pending.clear();
    s.queues.pace.hold_until = s.tick + 100;
    let fx = update(&mut s, Msg::Key(Key::ctrl('r')));
    assert!(matches!(fx.first(), Some(Effect::LoadQueues(_))), "{fx:?}");
}

#[test]
fn a_refused_peek_asks_before_forcing_and_remembers_the_answer() {
    let mut s = with_queues(&[("orders.qq", 3)]);
    let fx = update(&mut s, special(KeyCode::Enter));
    let (req, _, _) = load_req(&fx);
    let refusal = "refused: \"orders.qq\" is a quorum queue with a delivery limit of 2".to_string();
    update(
        &mut s,
        Msg::MessagesLoaded {
            req,
            result: Err(refusal.clone()),
        },
    );
    let c = s.confirm.clone().expect("a question");
    assert!(c.body.contains("delivery limit of 2"));
    // Other keys neither answer nor act.
    assert!(update(&mut s, key('j')).is_empty());
    assert!(update(&mut s, key('q')).is_empty() && !s.quit);
    assert!(s.confirm.is_some());
    // No: nothing happens.
    assert!(update(&mut s, key('n')).is_empty());
    assert!(s.confirm.is_none());
    // Ask again (Ctrl-R reloads, is refused again), and say yes this time.
    let fx = update(&mut s, Msg::Key(Key::ctrl('r')));
    let (req, _, _) = load_req(&fx);
    update(
        &mut s,
        Msg::MessagesLoaded {
            req,
            result: Err(refusal),
        },
    );
    assert!(s.confirm.is_some());
    let fx = update(&mut s, key('y'));
    assert!(
        matches!(fx.as_slice(), [Effect::LoadMessages { force: true, .. }]),
        "{fx:?}"
    );
    let (req, _, _) = load_req(&fx);
    update(
        &mut s,
        Msg::MessagesLoaded {
            req,
            result: Ok(page(0, PAGE)),
        },
    );
    // Later pages of the same queue stay forced, without asking each time.
    let mut fx = Vec::new();
    for _ in 0..PAGE {
        fx.extend(update(&mut s, key('j')));
    }
    assert!(
        matches!(fx.as_slice(), [Effect::LoadMessages { force: true, .. }]),
        "{fx:?}"
    );
    // Leaving the queue forgets the answer.
    update(&mut s, special(KeyCode::Esc));
    let fx = update(&mut s, special(KeyCode::Enter));
    assert!(
        matches!(fx.as_slice(), [Effect::LoadMessages { force: false, .. }]),
        "{fx:?}"
    );
}

#[test]
fn quit_and_ctrl_c() {
    let mut s = with_queues(&[("a", 1)]);
    assert_eq!(update(&mut s, key('q')), vec![Effect::Quit]);
    let mut s = with_queues(&[("a", 1)]);
    update(&mut s, key('/'));
    update(&mut s, key('q'));
    assert!(!s.quit, "q types into the filter");
    update(&mut s, Msg::Key(Key::ctrl('c')));
    update(&mut s, special(KeyCode::Esc));
    update(&mut s, Msg::Key(Key::ctrl('c')));
    assert!(s.quit);
}

// ---- the real worker against the demo, drawn into a test terminal ----

struct Harness {
    state: State,
    worker: Worker,
    rx: mpsc::UnboundedReceiver<Msg>,
}

impl Harness {
    async fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let target = Target::parse("local://demo?clock=fixed&seed=42").unwrap();
        let worker = Worker::with_options(
            target,
            ConnectOptions {
                live: false,
                ..Default::default()
            },
            tx,
        );
        let mut h = Harness {
            state: fresh(),
            worker,
            rx,
        };
        h.run(vec![Effect::Connect]).await;
        h
    }

    /// Run effects through the worker and feed every reply back until nothing is pending.
    async fn run(&mut self, effects: Vec<Effect>) {
        // Effects with one final reply; a trace streams events before its result, and
        // cancels and follows have no final reply to wait for.
        let replies = |e: &Effect| {
            !matches!(
                e,
                Effect::Copy(_)
                    | Effect::Quit
                    | Effect::CancelTrace(_)
                    | Effect::Follow { .. }
                    | Effect::StopFollow(_)
            )
        };
        let mut outstanding = 0;
        for e in effects {
            if replies(&e) {
                outstanding += 1;
            }
            if !matches!(e, Effect::Copy(_) | Effect::Quit) {
                self.worker.run(e);
            }
        }
        while outstanding > 0 {
            let msg = self.rx.recv().await.expect("worker reply");
            if !matches!(
                msg,
                Msg::TraceEvent { .. } | Msg::TraceProgress { .. } | Msg::FollowHop { .. }
            ) {
                outstanding -= 1;
            }
            let fx = update(&mut self.state, msg);
            for e in fx {
                if replies(&e) {
                    outstanding += 1;
                }
                if !matches!(e, Effect::Copy(_) | Effect::Quit) {
                    self.worker.run(e);
                }
            }
        }
        // Pin the wall-clock times the worker stamps, so drawings repeat: the trace's
        // duration too (it was capped at 42 ms, so a 41 ms trace drew a different frame).
        self.state.trace.elapsed_ms = 42;
        let t = chrono::DateTime::from_timestamp(1_767_225_600, 0);
        self.state.queues.refreshed_at = self.state.queues.refreshed_at.and(t);
        self.state.groups.refreshed_at = self.state.groups.refreshed_at.and(t);
        self.state.exchanges.refreshed_at = self.state.exchanges.refreshed_at.and(t);
        // And how long the worker's listing took, which sets the pace of the next.
        for pace in [
            &mut self.state.queues.pace,
            &mut self.state.groups.pace,
            &mut self.state.exchanges.pace,
        ] {
            if pace.took_ms.is_some() {
                pace.listed(self.state.tick, 5);
            }
        }
    }

    async fn send(&mut self, msg: Msg) {
        let fx = update(&mut self.state, msg);
        self.run(fx).await;
    }

    async fn keys(&mut self, keys: &str) {
        for c in keys.chars() {
            self.send(key(c)).await;
        }
    }

    fn draw(&self, theme: &Theme, w: u16, h: u16) -> String {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| mqscope::tui::ui::draw(f, &self.state, theme))
            .unwrap();
        format!("{:?}", term.backend().buffer())
    }

    fn text(&self) -> String {
        let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
        term.draw(|f| mqscope::tui::ui::draw(f, &self.state, &Theme::default_theme()))
            .unwrap();
        let buf = term.backend().buffer();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn snap(name: &str, h: &Harness) {
    for theme in ["default", "light"] {
        let t = Theme::builtin(theme).unwrap();
        insta::assert_snapshot!(format!("{name}__{theme}"), h.draw(&t, 100, 30));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_snapshot() {
    let mut h = Harness::new().await;
    assert!(h.text().contains("billing.dlq"), "{}", h.text());
    snap("queues", &h);

    h.keys("/dlq").await;
    snap("queues_filtering", &h);
    h.send(special(KeyCode::Enter)).await;

    h.send(special(KeyCode::Enter)).await;
    assert_eq!(h.state.messages.queue, "billing.dlq");
    snap("messages", &h);

    h.send(special(KeyCode::Enter)).await;
    assert!(h.text().contains("rejected in billing"), "{}", h.text());
    snap("message", &h);

    h.keys("p").await;
    h.keys("p").await;
    h.keys("p").await;
    snap("message_hex", &h);

    h.keys("?").await;
    snap("help", &h);
    h.send(special(KeyCode::Esc)).await;
    h.send(special(KeyCode::Esc)).await;
    h.send(special(KeyCode::Esc)).await;
    h.send(special(KeyCode::Esc)).await;
    h.keys("c").await;
    assert_eq!(h.state.view(), View::Groups);
    snap("groups", &h);

    // Exchanges, and beside them where the selected one routes.
    h.keys("Qx").await;
    assert_eq!(h.state.view(), View::Exchanges);
    h.keys("/^orders$").await;
    h.send(special(KeyCode::Enter)).await;
    let text = h.text();
    for routed in ["billing", "shipping", "email", "analytics"] {
        assert!(text.contains(&format!("→ {routed}")), "{text}");
    }
    snap("exchanges", &h);
    // Enter: the queues it routes to, in the queue list.
    h.send(special(KeyCode::Enter)).await;
    assert_eq!(h.state.view(), View::Queues);
    let mut shown: Vec<String> = h
        .state
        .queues
        .visible
        .iter()
        .map(|i| h.state.queues.list[*i].name.clone())
        .collect();
    shown.sort();
    assert_eq!(shown, ["analytics", "billing", "email", "shipping"]);
    assert!(h.text().contains("bound to orders"), "{}", h.text());
    // Esc: all queues again.
    h.send(special(KeyCode::Esc)).await;
    assert!(h.state.queues.visible.len() > 4);
    h.keys("c").await;

    let t = Theme::default_theme();
    insta::assert_snapshot!("too_small", h.draw(&t, 40, 12));

    h.state.confirm = Some(mqscope::tui::state::Confirm {
        title: "Peek orders.qq anyway?".into(),
        body: "\"orders.qq\" is a quorum queue with a delivery limit of 2: a peek returns every message it reads, each return counts towards the limit.".into(),
        action: mqscope::tui::state::ConfirmAction::ForcePeek,
        typed: None,
        answer: String::new(),
    });
    snap("confirm", &h);
}

/// From a dead letter on the fixed-clock demo: `t` traces its order through the real
/// worker; the view lists the fan-out and the dead-letter hop, and Enter opens a hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_view_snapshot_and_jump_on_the_demo() {
    let mut h = Harness::new().await;
    h.send(key(':')).await;
    h.keys("q billing.dlq").await;
    h.send(special(KeyCode::Enter)).await;
    h.keys("G").await;
    h.send(special(KeyCode::Enter)).await;
    assert_eq!(h.state.view(), View::Message);
    let id = mqscope::ops::trace::Extractor::default()
        .extract(h.state.message.msg.as_ref().unwrap())
        .unwrap();
    h.keys("t").await;
    assert_eq!(h.state.view(), View::Trace);
    assert_eq!(h.state.trace.id, id);
    assert_eq!(h.state.trace.phase, TracePhase::Done);
    assert_eq!(h.state.trace.queues_done, 14);
    let text = h.text();
    assert!(text.contains("billing.dlq#"), "{text}");
    assert!(text.contains("rejected in billing ×1"), "{text}");
    assert!(text.contains("reached "), "{text}");
    snap("trace", &h);

    // Enter on the dead-letter hop opens that very message.
    let row = h
        .state
        .trace
        .rows
        .iter()
        .position(|r| h.state.trace.hops[r.hop].queue == "billing.dlq")
        .expect("a dead-letter row");
    h.keys("g").await;
    for _ in 0..row {
        h.keys("j").await;
    }
    h.send(special(KeyCode::Enter)).await;
    assert_eq!(h.state.view(), View::Message, "{:?}", h.state.status);
    let opened = h.state.message.msg.as_ref().unwrap();
    assert_eq!(opened.queue, "billing.dlq");
    assert_eq!(
        mqscope::ops::trace::Extractor::default()
            .extract(opened)
            .as_deref(),
        Some(id.as_str())
    );
    h.send(special(KeyCode::Esc)).await;
    h.send(special(KeyCode::Esc)).await;
    assert_eq!(h.state.view(), View::Trace);
    h.keys("?").await;
    let help = h.text();
    assert!(help.contains("follow live"), "{help}");
    assert!(help.contains(":trace ID"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_page_by_partition_and_binary_opens_as_hex() {
    let mut h = Harness::new().await;
    h.send(special(KeyCode::Esc)).await;
    h.send(key(':')).await;
    h.keys("q payments").await;
    h.send(special(KeyCode::Enter)).await;
    assert_eq!(h.state.messages.partition, Some(0));
    assert!(
        h.state
            .messages
            .window
            .iter()
            .all(|m| m.partition == Some(0))
    );
    h.keys("]").await;
    assert!(
        h.state
            .messages
            .window
            .iter()
            .all(|m| m.partition == Some(1))
    );
    h.send(special(KeyCode::Esc)).await;
    h.send(key(':')).await;
    h.keys("q labels").await;
    h.send(special(KeyCode::Enter)).await;
    h.send(special(KeyCode::Enter)).await;
    assert_eq!(
        h.state.message.body_kind,
        mqscope::tui::state::BodyKind::Hex
    );
    assert!(h.text().contains("00000000"), "{}", h.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_payload_opens_without_laying_out_everything() {
    let mut m = Message::new("q", 0, vec![b'x'; 10 * 1024 * 1024]);
    m.properties.content_type = Some("text/plain".into());
    let mut s2 = with_queues(&[("q", 1)]);
    let fx = update(&mut s2, special(KeyCode::Enter));
    let (req, _, _) = load_req(&fx);
    update(
        &mut s2,
        Msg::MessagesLoaded {
            req,
            result: Ok(PeekPage {
                messages: vec![m],
                notes: vec![],
            }),
        },
    );
    update(&mut s2, special(KeyCode::Enter));
    assert_eq!(s2.view(), View::Message);
    assert!(
        s2.message
            .body
            .iter()
            .all(|l| l.len() <= mqscope::tui::state::LINE_CHUNK)
    );
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    term.draw(|f| mqscope::tui::ui::draw(f, &s2, &Theme::default_theme()))
        .unwrap();
    update(&mut s2, key('w'));
    term.draw(|f| mqscope::tui::ui::draw(f, &s2, &Theme::default_theme()))
        .unwrap();
    let buf = term.backend().buffer();
    assert_eq!(buf[(1, 20)].symbol(), "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_replay_and_purge_behind_confirms() {
    let state = tempfile::tempdir().unwrap();
    // SAFETY: only this test in this binary reads the state directory.
    unsafe { std::env::set_var("MQSCOPE_STATE_DIR", state.path()) };
    let mut h = Harness::new().await;
    let depth = h
        .state
        .queues
        .list
        .iter()
        .find(|q| q.name == "billing.dlq")
        .and_then(|q| q.messages)
        .expect("billing.dlq's depth") as usize;
    h.send(key(':')).await;
    h.keys("q billing.dlq").await;
    h.send(special(KeyCode::Enter)).await;
    let before = h.state.messages.window.len();
    assert!(before >= 3, "the demo has dead letters");
    let third = h.state.messages.window[2].properties.message_id.clone();

    // Mark two messages; the cursor moves on after each.
    h.keys("  ").await;
    assert_eq!(h.state.messages.marked.len(), 2);
    assert!(h.text().contains("2 marked"), "{}", h.text());
    h.keys("R").await;
    let c = h.state.confirm.clone().expect("replay asks first");
    assert!(c.body.contains("2 marked"), "{}", c.body);
    // n: nothing happens.
    h.keys("n").await;
    assert!(h.state.confirm.is_none());
    assert_eq!(h.state.messages.window.len(), before);
    h.keys("Ry").await;
    let info = h.state.status.info.clone().unwrap_or_default();
    assert!(
        info.starts_with("replayed 2 from billing.dlq"),
        "{info} / {:?}",
        h.state.status.error
    );
    assert!(h.state.messages.marked.is_empty());
    // The window was reloaded: the two replayed ones are gone, the third is now first.
    assert_eq!(h.state.messages.window[0].properties.message_id, third);

    // Purge wants the queue's name typed; a wrong name does nothing.
    h.keys("P").await;
    assert!(h.state.confirm.as_ref().is_some_and(|c| c.typed.is_some()));
    h.keys("y").await;
    h.send(special(KeyCode::Enter)).await;
    assert!(
        h.state.confirm.is_some(),
        "y and a wrong name are not enough"
    );
    assert!(!h.state.messages.window.is_empty());
    h.send(special(KeyCode::Backspace)).await;
    h.keys("billing.dl").await;
    snap("confirm_typed", &h);
    h.keys("q").await;
    h.send(special(KeyCode::Enter)).await;
    let info = h.state.status.info.clone().unwrap_or_default();
    assert!(
        info.starts_with("removed "),
        "{info} / {:?}",
        h.state.status.error
    );
    assert!(h.state.messages.window.is_empty(), "purged");
    let backup = info.split("backup ").nth(1).unwrap().to_string();
    let lines = std::fs::read_to_string(&backup).unwrap().lines().count();
    assert_eq!(lines + 2, depth, "every purged message is in the backup");
    let audit = std::fs::read_to_string(state.path().join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 2, "{audit}");
}

#[test]
fn read_only_hides_and_refuses_modifying_keys() {
    let mut s = with_queues(&[("billing.dlq", 5)]);
    s.status.read_only = true;
    let fx = update(&mut s, key('P'));
    assert!(fx.is_empty() && s.confirm.is_none());
    assert!(
        s.status
            .error
            .as_deref()
            .unwrap_or("")
            .contains("read-only")
    );
    let mut term = Terminal::new(TestBackend::new(120, 30)).unwrap();
    s.stack.push(View::Help);
    term.draw(|f| mqscope::tui::ui::draw(f, &s, &Theme::default_theme()))
        .unwrap();
    let text = format!("{:?}", term.backend().buffer());
    assert!(
        !text.contains("purge queue"),
        "help lists no purge in read-only mode"
    );
    assert!(text.contains("open messages"), "the help is there");
}

/// `:exchanges` lists them; Enter shows the queues an exchange reaches, through
/// exchange-to-exchange bindings too; Tab goes round queues, groups and exchanges; a
/// backend without exchanges says so.
#[test]
fn exchanges_view_shows_where_an_exchange_routes() {
    use mqscope::model::topology::{Binding, DestinationKind, ExchangeSummary};
    let mut s = with_queues(&[("billing", 1), ("audit log", 2), ("other", 3)]);
    update(&mut s, key(':'));
    for c in "exchanges".chars() {
        update(&mut s, key(c));
    }
    let fx = update(&mut s, special(KeyCode::Enter));
    let Some(Effect::LoadExchanges(req)) = fx.first().cloned() else {
        panic!("{fx:?}")
    };
    assert_eq!(s.view(), View::Exchanges);
    let ex = |name: &str| ExchangeSummary {
        name: name.into(),
        kind: "topic".into(),
        durable: true,
        auto_delete: false,
        internal: false,
        alternate_exchange: None,
        policy: None,
        arguments: Default::default(),
        publish_in_rate: Some(0.0),
        publish_out_rate: Some(0.0),
        bindings: 1,
    };
    let bind = |from: &str, to: &str, kind| Binding {
        source: from.into(),
        destination: to.into(),
        destination_kind: kind,
        routing_key: "#".into(),
        arguments: Default::default(),
    };
    update(
        &mut s,
        Msg::ExchangesLoaded {
            req,
            result: Ok((
                vec![ex(""), ex("audit"), ex("orders")],
                vec![
                    bind("orders", "billing", DestinationKind::Queue),
                    bind("orders", "audit", DestinationKind::Exchange),
                    bind("audit", "audit log", DestinationKind::Queue),
                    bind("audit", "orders", DestinationKind::Exchange),
                ],
            )),
            at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            took_ms: 5,
        },
    );
    assert_eq!(s.exchanges.visible.len(), 3);
    update(&mut s, special(KeyCode::Down));
    update(&mut s, special(KeyCode::Down));
    assert_eq!(s.exchanges.selected().unwrap().name, "orders");
    let shown = screen(&s);
    assert!(shown.contains("⇒ exchange audit"), "{shown}");
    assert!(shown.contains("⇐ audit"), "incoming e2e: {shown}");
    let fx = update(&mut s, special(KeyCode::Enter));
    assert!(matches!(fx.first(), Some(Effect::LoadQueues(_))), "{fx:?}");
    assert_eq!(s.view(), View::Queues);
    let mut names: Vec<&str> = s
        .queues
        .visible
        .iter()
        .map(|i| s.queues.list[*i].name.as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["audit log", "billing"], "through the loop once");
    assert!(s.status.info.as_deref().unwrap().contains("2 queue(s)"));

    // Tab: queues, groups, exchanges, and round again.
    update(&mut s, special(KeyCode::Tab));
    assert_eq!(s.view(), View::Groups);
    update(&mut s, special(KeyCode::Tab));
    assert_eq!(s.view(), View::Exchanges);
    update(&mut s, special(KeyCode::Tab));
    assert_eq!(s.view(), View::Queues);

    s.has_exchanges = false;
    assert!(update(&mut s, key('x')).is_empty());
    assert!(s.status.info.as_deref().unwrap().contains("no exchanges"));
    assert_eq!(s.view(), View::Queues);
}

/// `:vhost` lists RabbitMQ's virtual hosts, `:vhost NAME` reconnects to one with the old
/// lists cleared, a name the broker does not have is refused, and other backends say
/// they have none.
#[test]
fn vhost_command_lists_and_switches() {
    let mut s = with_queues(&[("billing", 1)]);
    let command = |s: &mut State, text: &str| {
        update(s, key(':'));
        for c in text.chars() {
            update(s, key(c));
        }
        update(s, special(KeyCode::Enter))
    };
    assert!(command(&mut s, "vhost prod").is_empty());
    assert!(
        s.status
            .error
            .as_deref()
            .unwrap()
            .contains("no virtual hosts")
    );

    s.status.backend = "rabbitmq".into();
    let fx = command(&mut s, "vhost");
    let Some(Effect::LoadVhosts(req)) = fx.first().cloned() else {
        panic!("{fx:?}")
    };
    update(
        &mut s,
        Msg::VhostsLoaded {
            req,
            result: Ok(vec!["/".into(), "prod eu".into(), "staging".into()]),
        },
    );
    assert!(
        s.status
            .info
            .as_deref()
            .unwrap()
            .contains("prod eu, staging")
    );
    // Tab completes a vhost name.
    update(&mut s, key(':'));
    for c in "vhost pr".chars() {
        update(&mut s, key(c));
    }
    update(&mut s, special(KeyCode::Tab));
    assert_eq!(s.input.as_ref().unwrap().text, "vhost prod eu");
    update(&mut s, special(KeyCode::Esc));

    assert!(command(&mut s, "vhost nope").is_empty());
    assert!(
        s.status
            .error
            .as_deref()
            .unwrap()
            .contains("no virtual host \"nope\"")
    );
    let fx = command(&mut s, "vhost prod eu");
    assert_eq!(fx, vec![Effect::SwitchVhost("prod eu".into())]);
    assert!(s.queues.list.is_empty(), "the old vhost's queues are gone");
    assert!(!s.backend_ready);
    assert_eq!(s.view(), View::Queues);
    // No way in (no permission there): the old vhost's connection carries on.
    let fx = update(&mut s, Msg::VhostSwitchFailed("access refused".into()));
    assert!(matches!(fx.first(), Some(Effect::LoadQueues(_))), "{fx:?}");
    assert!(s.backend_ready);
    assert!(
        s.status
            .error
            .as_deref()
            .unwrap()
            .contains("access refused")
    );
}

/// `i` describes the selected queue (depth, dead-letter wiring, arguments); from the
/// messages view it describes the queue or topic being read; Esc goes back where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_describes_the_selected_queue_or_topic() {
    let mut h = Harness::new().await;
    let row = h
        .state
        .queues
        .visible
        .iter()
        .position(|i| h.state.queues.list[*i].name == "billing")
        .expect("billing listed");
    for _ in 0..row {
        h.keys("j").await;
    }
    h.keys("i").await;
    assert_eq!(h.state.view(), View::Info);
    assert_eq!(h.state.info.queue, "billing");
    let text = h.text();
    assert!(text.contains("dead-letters to  orders.dlx"), "{text}");
    assert!(text.contains("which reaches    billing.dlq"), "{text}");
    assert!(text.contains("x-dead-letter-routing-key"), "{text}");
    snap("info", &h);
    // Ctrl-R describes again; scrolling stops at the last line.
    h.send(Msg::Key(Key::ctrl('r'))).await;
    assert!(h.state.info.pending.is_none() && h.state.info.detail.is_some());
    h.keys("GGG").await;
    assert!(h.state.info.scroll <= mqscope::tui::update::info_lines(&h.state));
    h.send(special(KeyCode::Esc)).await;
    assert_eq!(h.state.view(), View::Queues);

    h.send(key(':')).await;
    h.keys("q payments").await;
    h.send(special(KeyCode::Enter)).await;
    assert_eq!(h.state.view(), View::Messages);
    h.keys("i").await;
    assert_eq!(h.state.view(), View::Info);
    let text = h.text();
    assert!(text.contains("Partitions"), "{text}");
    assert!(text.contains("offsets 0–"), "{text}");
    let groups = &h.state.info.detail.as_ref().unwrap().consumer_groups;
    assert!(
        groups
            .iter()
            .any(|g| g.name == "payments-processor" && g.topics == ["payments"]),
        "{groups:?}"
    );
    h.send(special(KeyCode::Esc)).await;
    assert_eq!(h.state.view(), View::Messages);
    assert_eq!(h.state.messages.queue, "payments");

    // :info NAME (Tab completes the name) describes any queue; a wrong name says why.
    async fn command(h: &mut Harness, text: &str) {
        h.send(key(':')).await;
        h.keys(text).await;
    }
    command(&mut h, "info billing.d").await;
    h.send(special(KeyCode::Tab)).await;
    h.send(special(KeyCode::Enter)).await;
    assert_eq!(h.state.view(), View::Info);
    assert_eq!(h.state.info.queue, "billing.dlq");
    assert!(h.text().contains("receives from  billing"), "{}", h.text());
    command(&mut h, "q billng").await;
    h.send(special(KeyCode::Enter)).await;
    let err = h.state.status.error.clone().unwrap_or_default();
    assert!(err.contains("did you mean billing"), "{err}");
    command(&mut h, "exchanges").await;
    h.send(special(KeyCode::Enter)).await;
    assert!(!h.state.exchanges.list.is_empty());
    command(&mut h, "q orders").await;
    h.send(special(KeyCode::Enter)).await;
    let err = h.state.status.error.clone().unwrap_or_default();
    assert!(err.contains("it is an exchange"), "{err}");
}

#[test]
fn a_time_too_far_back_is_an_error_not_a_crash() {
    let mut s = with_queues(&[("a", 1)]);
    update(&mut s, special(KeyCode::Enter));
    for c in ":since 99999999999d".chars() {
        update(&mut s, key(c));
    }
    let fx = update(&mut s, special(KeyCode::Enter));
    assert!(fx.is_empty(), "{fx:?}");
    let e = s.status.error.clone().unwrap_or_default();
    assert!(e.contains("further back than any date"), "{e}");
}

/// Connected to RabbitMQ, the status bar names the broker's version and what a peek costs
/// its quorum queues there.
#[test]
fn the_status_bar_shows_the_broker_version_and_the_quorum_peek_rule() {
    let mut s = fresh();
    update(
        &mut s,
        Msg::Connected {
            backend: "rabbitmq".into(),
            target: "amqp://guest@127.0.0.1:5690/%2F".into(),
            server: Some(mqscope::model::broker::BrokerVersion::new("RabbitMQ", "4.3.6").status()),
            has_groups: false,
            has_exchanges: true,
        },
    );
    let text = screen(&s);
    assert!(
        text.contains("RabbitMQ 4.3.6 · quorum peeks free amqp://guest@127.0.0.1:5690/%2F"),
        "{text}"
    );
}

/// Opens `m` as the selected queue's only message: the message view as drawn.
fn open_only_message(s: &mut State, m: Message) -> String {
    let fx = update(s, special(KeyCode::Enter));
    let (req, _, _) = load_req(&fx);
    let result = Ok(PeekPage {
        messages: vec![m],
        notes: Vec::new(),
    });
    update(s, Msg::MessagesLoaded { req, result });
    update(s, special(KeyCode::Enter));
    assert_eq!(s.view(), View::Message);
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    term.draw(|f| mqscope::tui::ui::draw(f, s, &Theme::default_theme()))
        .unwrap();
    format!("{:?}", term.backend().buffer())
}

/// A MessagePack body opens decoded, its details say how it was read, and `p` goes from
/// the decoded value to the raw payload's modes.
#[test]
fn a_messagepack_body_opens_decoded() {
    let mut s = with_queues(&[("orders", 1)]);
    let mut body = Vec::new();
    rmpv::encode::write_value(
        &mut body,
        &rmpv::Value::Map(vec![
            ("order".into(), 7.into()),
            ("items".into(), rmpv::Value::Array(vec!["tea".into()])),
        ]),
    )
    .unwrap();
    let mut m = Message::new("orders", 0, body);
    m.properties.content_type = Some("application/msgpack".into());
    insta::assert_snapshot!("message_decoded", open_only_message(&mut s, m));
    let text = screen(&s);
    assert!(text.contains("decoded: msgpack"), "{text}");
    assert!(text.contains("\"order\": 7"), "{text}");
    update(&mut s, key('p'));
    assert!(screen(&s).contains("mode decoded"), "{}", screen(&s));
    update(&mut s, key('p'));
    assert!(screen(&s).contains("mode json"), "{}", screen(&s));
}

/// A Protobuf body on a queue mapped to a `.proto` opens decoded, and its details name the
/// schema file and the message type it was read as.
#[test]
fn a_protobuf_body_opens_decoded_with_its_message_type() {
    use mqscope::format::decode::{Decoder, LocalSchemas, Origin, Rule, Schema};
    let mut s = with_queues(&[("orders", 1)]);
    let proto = "syntax = \"proto3\"; package shop;\n\
                 message Order { string id = 1; int64 total_cents = 2; repeated string items = 3; }";
    let schema =
        Schema::protobuf_from_text(proto, &[], Origin::File("order.proto".into())).unwrap();
    let mut schemas = LocalSchemas::default();
    schemas.add_id(3, schema);
    let rule = Rule {
        format: Some(mqscope::format::decode::Format::Protobuf),
        ..Rule::default()
    };
    s.decoding = mqscope::tui::state::Decoding(std::sync::Arc::new(Decoder::new(
        [("orders".to_string(), rule)].into(),
        std::sync::Arc::new(schemas),
    )));
    // Confluent-framed (schema id 3, message index [0]): id "o-7", total_cents 1250, items.
    let body = b"\x00\x00\x00\x00\x03\x00\x0a\x03o-7\x10\xe2\x09\x1a\x03tea".to_vec();
    let drawn = open_only_message(&mut s, Message::new("orders", 0, body));
    insta::assert_snapshot!("message_decoded_protobuf", drawn);
    let text = screen(&s);
    assert!(
        text.contains("decoded: protobuf, schema id 3, schema order.proto, message shop.Order"),
        "{text}"
    );
    assert!(text.contains("\"total_cents\": \"1250\""), "{text}");
}
