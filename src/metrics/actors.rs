//! Mailbox figures of the actors: how many messages wait in each kind of actor's mailbox
//! (`actor_mailbox_backlog`), how many were handled (`actor_messages_handled_total`).
//!
//! Actix does not tell how long a mailbox is, so every message sent through a [`MeteredAddr`]
//! travels with a [`Ticket`]: it counts one more waiting message while it exists and one fewer
//! once dropped, which happens after the message is handled or when its actor stops with the
//! message still queued (a closed session), so the figure never drifts. The counts are plain
//! atomics, read only when Prometheus scrapes: a fan-out to ten thousand sessions costs ten
//! thousand atomic additions, nothing more.
//!
//! An actor accepts metered messages with one line, `metrics::metered_actor!(Registry);`, which
//! forwards `Ticketed<M>` to the actor's own `Handler<M>`: handlers stay as they are.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use actix::dev::{MessageResponse, OneshotSender, Request, ToEnvelope};
use actix::{Actor, Addr, Handler, Message};

use super::labels::ActorKind;

/// Per actor kind (indexed as [`ActorKind::ALL`]): messages waiting, messages handled.
pub(super) struct ActorCounts {
    backlog: [AtomicI64; 3],
    handled: [AtomicU64; 3],
}

pub(super) static COUNTS: ActorCounts = ActorCounts {
    backlog: [AtomicI64::new(0), AtomicI64::new(0), AtomicI64::new(0)],
    handled: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
};

fn index(actor: ActorKind) -> usize {
    match actor {
        ActorKind::Registry => 0,
        ActorKind::Projector => 1,
        ActorKind::Session => 2,
    }
}

impl ActorCounts {
    /// Messages waiting in the mailboxes of `actor` (all sessions together).
    pub(super) fn backlog(&self, actor: ActorKind) -> i64 {
        self.backlog[index(actor)].load(Ordering::Relaxed).max(0)
    }

    /// Messages `actor` has handled since the start.
    pub(super) fn handled(&self, actor: ActorKind) -> u64 {
        self.handled[index(actor)].load(Ordering::Relaxed)
    }
}

/// Counts one message of `actor` as handled: for inputs that do not come through a mailbox
/// (a store subscription, a socket's frames) and for messages a [`Ticket`] rides in.
pub fn actor_handled(actor: ActorKind) {
    COUNTS.handled[index(actor)].fetch_add(1, Ordering::Relaxed);
}

/// One message waiting for an actor of kind `actor`, for as long as it exists.
#[derive(Debug)]
pub struct Ticket {
    actor: ActorKind,
}

impl Ticket {
    pub fn new(actor: ActorKind) -> Ticket {
        COUNTS.backlog[index(actor)].fetch_add(1, Ordering::Relaxed);
        Ticket { actor }
    }

    /// The message was handled: counted, and no longer waiting.
    pub fn handled(self) {
        actor_handled(self.actor);
    }
}

/// A copy of a message is one more message waiting.
impl Clone for Ticket {
    fn clone(&self) -> Ticket {
        Ticket::new(self.actor)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        COUNTS.backlog[index(self.actor)].fetch_sub(1, Ordering::Relaxed);
    }
}

/// A message with its ticket; the actor handles it as `M`.
pub struct Ticketed<M> {
    message: M,
    ticket: Ticket,
}

impl<M> Ticketed<M> {
    pub fn new(message: M, actor: ActorKind) -> Self {
        Ticketed {
            message,
            ticket: Ticket::new(actor),
        }
    }

    pub fn into_parts(self) -> (M, Ticket) {
        (self.message, self.ticket)
    }
}

impl<M: Message> Message for Ticketed<M> {
    type Result = M::Result;
}

/// The answer of a `Ticketed<M>`: the answer of `M`, passed on as it is.
pub struct Forward<R>(pub R);

impl<A, M, R> MessageResponse<A, Ticketed<M>> for Forward<R>
where
    A: Actor,
    M: Message,
    R: MessageResponse<A, M>,
{
    fn handle(self, ctx: &mut A::Context, tx: Option<OneshotSender<M::Result>>) {
        self.0.handle(ctx, tx)
    }
}

/// Lets an actor take `Ticketed<M>` for every `M` it handles.
#[macro_export]
macro_rules! metered_actor {
    ($actor:ty) => {
        impl<M> ::actix::Handler<$crate::metrics::Ticketed<M>> for $actor
        where
            $actor: ::actix::Handler<M>,
            M: ::actix::Message + 'static,
        {
            type Result = $crate::metrics::Forward<<$actor as ::actix::Handler<M>>::Result>;

            fn handle(
                &mut self,
                message: $crate::metrics::Ticketed<M>,
                ctx: &mut <$actor as ::actix::Actor>::Context,
            ) -> Self::Result {
                let (message, ticket) = message.into_parts();
                let answer = <$actor as ::actix::Handler<M>>::handle(self, message, ctx);
                ticket.handled();
                $crate::metrics::Forward(answer)
            }
        }
    };
}

/// An actor's address whose messages are counted: `send` and `do_send` as on [`Addr`].
pub struct MeteredAddr<A: Actor> {
    addr: Addr<A>,
    actor: ActorKind,
}

impl<A: Actor> Clone for MeteredAddr<A> {
    fn clone(&self) -> Self {
        MeteredAddr {
            addr: self.addr.clone(),
            actor: self.actor,
        }
    }
}

impl<A: Actor> MeteredAddr<A> {
    pub fn new(addr: Addr<A>, actor: ActorKind) -> Self {
        MeteredAddr { addr, actor }
    }

    /// Sends `message` and answers its result, as [`Addr::send`].
    pub fn send<M>(&self, message: M) -> Request<A, Ticketed<M>>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<Ticketed<M>>,
        A::Context: ToEnvelope<A, Ticketed<M>>,
    {
        self.addr.send(Ticketed::new(message, self.actor))
    }

    /// Sends `message` without waiting for room or for an answer, as [`Addr::do_send`].
    pub fn do_send<M>(&self, message: M)
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<Ticketed<M>>,
        A::Context: ToEnvelope<A, Ticketed<M>>,
    {
        self.addr.do_send(Ticketed::new(message, self.actor))
    }

    /// Whether the actor is still running.
    pub fn connected(&self) -> bool {
        self.addr.connected()
    }

    /// The plain address (its messages are not counted).
    pub fn addr(&self) -> &Addr<A> {
        &self.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::prelude::*;

    struct Echo;

    impl Actor for Echo {
        type Context = Context<Self>;
    }

    #[derive(Message)]
    #[rtype(result = "u32")]
    struct Double(u32);

    impl Handler<Double> for Echo {
        type Result = u32;
        fn handle(&mut self, msg: Double, _: &mut Context<Self>) -> u32 {
            msg.0 * 2
        }
    }

    #[derive(Message)]
    #[rtype(result = "Vec<u32>")]
    struct List;

    impl Handler<List> for Echo {
        type Result = MessageResult<List>;
        fn handle(&mut self, _: List, _: &mut Context<Self>) -> Self::Result {
            MessageResult(vec![1, 2])
        }
    }

    #[derive(Message)]
    #[rtype(result = "()")]
    struct Stop;

    impl Handler<Stop> for Echo {
        type Result = ();
        fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
            ctx.stop();
        }
    }

    crate::metered_actor!(Echo);

    #[actix_rt::test]
    async fn metered_messages_are_answered_and_counted_until_handled() {
        // Sessions are never metered by unit tests, so their counts are this test's alone.
        let kind = ActorKind::Session;
        let handled = COUNTS.handled(kind);
        let addr = MeteredAddr::new(Echo.start(), kind);
        assert_eq!(addr.send(Double(21)).await.unwrap(), 42);
        assert_eq!(addr.send(List).await.unwrap(), vec![1, 2]);
        assert_eq!(COUNTS.handled(kind), handled + 2);
        assert_eq!(COUNTS.backlog(kind), 0);

        // Messages queued to an actor that stops before handling them leave the backlog as
        // the actor's mailbox is dropped.
        addr.do_send(Stop);
        for i in 0..3 {
            addr.do_send(Double(i));
        }
        assert_eq!(COUNTS.backlog(kind), 4, "nothing ran yet");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while addr.connected() {
            assert!(std::time::Instant::now() < deadline, "the actor stopped");
            tokio::task::yield_now().await;
        }
        assert_eq!(COUNTS.backlog(kind), 0);
        assert!(COUNTS.handled(kind) > handled + 2);
        // A message sent to a stopped actor is dropped at once.
        addr.do_send(Double(1));
        assert_eq!(COUNTS.backlog(kind), 0);

        // A copy of a message is one more waiting.
        let ticket = Ticket::new(kind);
        let copy = ticket.clone();
        assert_eq!(COUNTS.backlog(kind), 2);
        drop(copy);
        ticket.handled();
        assert_eq!(COUNTS.backlog(kind), 0);
    }
}
