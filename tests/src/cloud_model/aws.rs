//! The AWS side of the model: one Lambda concurrency pool shared by every function, execution environments that
//! start cold and are reused warm, billing, asynchronous invocation with its throttling retries, EventBridge's
//! once-a-minute schedule and PutEvents, and the intake API's traffic. Every number is a named constant with its
//! source; "assumption" marks the ones AWS does not document.

use std::{
    collections::VecDeque,
    future::Future,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use tokio::time::Instant;

/// Concurrent executions per account and Region, shared by every function
/// (docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html).
pub const ACCOUNT_CONCURRENCY: usize = 1_000;
/// Each function may add up to 1,000 execution environments every 10 seconds
/// (docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html).
pub const NEW_ENVIRONMENTS_PER_PERIOD: usize = 1_000;
pub const SCALING_PERIOD: Duration = Duration::from_secs(10);
/// A cold start of our ~10 MB arm64 bootstrap: the README's "Cold starts" measures our own init at 3–7 ms and the
/// first response at 15–53 ms under the emulator; AWS adds creating the environment and fetching the code.
/// Assumption: 120 ms in all, a usual figure for small custom runtimes.
pub const COLD_START: Duration = Duration::from_millis(120);
/// Billing counts duration in 1 ms steps times configured memory (aws.amazon.com/lambda/pricing).
pub const BILLING_STEP: Duration = Duration::from_millis(1);
/// arm64 in us-east-1 (aws.amazon.com/lambda/pricing), for the dollars beside the GB-s.
pub const DOLLARS_PER_GB_SECOND: f64 = 0.000_013_333_4;

/// A throttled asynchronous event goes back to Lambda's queue: "the retry interval increases exponentially from 1
/// second after the first attempt to a maximum of 5 minutes", for up to the maximum event age
/// (docs.aws.amazon.com/lambda/latest/dg/invocation-async.html).
pub const ASYNC_THROTTLE_RETRY_FIRST: Duration = Duration::from_secs(1);
pub const ASYNC_THROTTLE_RETRY_MAX: Duration = Duration::from_secs(300);
/// An asynchronous invocation that fails is retried `MaximumRetryAttempts` times (2 in template.yaml), one minute and
/// then two minutes later (invocation-async.html).
pub const ASYNC_ERROR_RETRY_WAITS: [Duration; 2] = [Duration::from_secs(60), Duration::from_secs(120)];
/// From an event on the bus (or the schedule firing) to the target's invocation starting. Assumption: EventBridge
/// documents no latency; 100 ms is a usual observed figure.
pub const EVENT_DELIVERY: Duration = Duration::from_millis(100);
/// One PutEvents call of at most 10 entries. Assumption: a DynamoDB-like 30 ms round trip within the Region.
pub const PUT_EVENTS_CALL: Duration = Duration::from_millis(30);
/// `rate(1 minute)`: "the finest rate" for EventBridge schedules; within its minute the tick fires at no fixed second
/// (docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html: one-minute precision).
pub const TICK_INTERVAL: Duration = Duration::from_secs(60);

/// The intake API's load while publishing: 200 requests a second (issue 10, scenario A).
pub const INTAKE_REQUESTS_PER_SECOND: u32 = 200;
/// How long one intake request holds its execution. Assumption: in process the router answers in under 1 ms
/// (README, Performance); in AWS a request makes two or three DynamoDB calls of ~10 ms each.
pub const INTAKE_REQUEST: Duration = Duration::from_millis(30);

/// A Lambda function as the model needs it: its name in the table and its configured memory.
#[derive(Debug, Clone, Copy)]
pub struct FunctionSpec {
    pub name: &'static str,
    pub memory_mb: u32,
}

/// template.yaml, IntakeApiFunction: `MemorySize: 256`.
pub const INTAKE: FunctionSpec = FunctionSpec {
    name: "intake",
    memory_mb: 256,
};
/// template.yaml, PublisherFunction: `MemorySize: 1024`, `Timeout: 900`.
pub const PUBLISHER: FunctionSpec = FunctionSpec {
    name: "publisher",
    memory_mb: 1024,
};
pub const PUBLISHER_TIMEOUT: Duration = Duration::from_secs(900);

/// The account's concurrency: the unreserved part is shared by every function without a reservation.
#[derive(Debug, Default)]
pub struct ConcurrencyPool {
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    /// Executions of functions without a reservation.
    unreserved_running: usize,
    reserved: usize,
}

impl ConcurrencyPool {
    fn unreserved_limit(state: &PoolState) -> usize {
        ACCOUNT_CONCURRENCY - state.reserved
    }
}

/// The invocation was refused: the account's concurrency (or the function's scaling rate) is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled;

/// What one function did over a run.
#[derive(Debug, Clone, Default)]
pub struct FunctionStats {
    pub invocations: u64,
    pub cold_starts: u64,
    pub throttled: u64,
    pub peak_running: usize,
    /// Billed duration, rounded up per invocation to the billing step.
    pub billed: Duration,
}

/// One Lambda function: its execution environments (each an `E`, e.g. the publisher's dependencies with their own
/// caches) and its share of the account's pool: its reserved concurrency, or the unreserved rest.
pub struct Function<E> {
    spec: FunctionSpec,
    pool: Arc<ConcurrencyPool>,
    reserved: Option<usize>,
    new_environment: Box<dyn Fn() -> E + Send + Sync>,
    state: Mutex<FunctionState<E>>,
}

struct FunctionState<E> {
    idle: Vec<E>,
    running: usize,
    recent_cold_starts: VecDeque<Instant>,
    stats: FunctionStats,
}

impl<E: Clone + Send + 'static> Function<E> {
    /// `reserved`: `ReservedConcurrentExecutions`, which both guarantees and caps the function's share.
    pub fn new(
        spec: FunctionSpec,
        pool: Arc<ConcurrencyPool>,
        reserved: Option<usize>,
        new_environment: impl Fn() -> E + Send + Sync + 'static,
    ) -> Arc<Self> {
        lock(&pool.state).reserved += reserved.unwrap_or(0);
        Arc::new(Self {
            spec,
            pool,
            reserved,
            new_environment: Box::new(new_environment),
            state: Mutex::new(FunctionState {
                idle: Vec::new(),
                running: 0,
                recent_cold_starts: VecDeque::new(),
                stats: FunctionStats::default(),
            }),
        })
    }

    pub fn spec(&self) -> FunctionSpec {
        self.spec
    }

    pub fn stats(&self) -> FunctionStats {
        lock(&self.state).stats.clone()
    }

    pub fn gb_seconds(&self) -> f64 {
        self.stats().billed.as_secs_f64() * f64::from(self.spec.memory_mb) / 1024.0
    }

    /// Runs `work` as one invocation in a warm environment, or a new one after a cold start; refused at once when
    /// the account's pool is full or the function may not add environments that fast.
    pub async fn invoke<T, Fut>(&self, work: impl FnOnce(E) -> Fut) -> Result<T, Throttled>
    where
        Fut: Future<Output = T>,
    {
        let began = Instant::now();
        let (environment, cold) = self.start(began)?;
        if cold {
            tokio::time::sleep(COLD_START).await;
        }
        let output = work(environment.clone()).await;
        self.finish(environment, began.elapsed());
        Ok(output)
    }

    fn start(&self, now: Instant) -> Result<(E, bool), Throttled> {
        let mut pool = lock(&self.pool.state);
        let mut state = lock(&self.state);
        let full = match self.reserved {
            Some(reserved) => state.running >= reserved,
            None => pool.unreserved_running >= ConcurrencyPool::unreserved_limit(&pool),
        };
        if full {
            state.stats.throttled += 1;
            return Err(Throttled);
        }
        let (environment, cold) = match state.idle.pop() {
            Some(environment) => (environment, false),
            None => {
                while state
                    .recent_cold_starts
                    .front()
                    .is_some_and(|at| now.duration_since(*at) >= SCALING_PERIOD)
                {
                    state.recent_cold_starts.pop_front();
                }
                if state.recent_cold_starts.len() >= NEW_ENVIRONMENTS_PER_PERIOD {
                    state.stats.throttled += 1;
                    return Err(Throttled);
                }
                state.recent_cold_starts.push_back(now);
                state.stats.cold_starts += 1;
                ((self.new_environment)(), true)
            }
        };
        if self.reserved.is_none() {
            pool.unreserved_running += 1;
        }
        state.running += 1;
        state.stats.invocations += 1;
        state.stats.peak_running = state.stats.peak_running.max(state.running);
        Ok((environment, cold))
    }

    fn finish(&self, environment: E, took: Duration) {
        let mut pool = lock(&self.pool.state);
        let mut state = lock(&self.state);
        if self.reserved.is_none() {
            pool.unreserved_running -= 1;
        }
        state.running -= 1;
        state.idle.push(environment);
        let steps = took.as_nanos().div_ceil(BILLING_STEP.as_nanos()).max(1);
        state.stats.billed += BILLING_STEP * u32::try_from(steps).unwrap_or(u32::MAX);
    }
}

/// What Lambda does with an asynchronous event it could not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncRetries {
    /// Lambda's default: retried with backoff while throttled, and after an error as `EventInvokeConfig` says
    /// (`MaximumRetryAttempts: 2`, today's template).
    Default,
    /// Dropped: the next event does the work (the timer design's ticks: `MaximumRetryAttempts: 0` and a 60 s
    /// maximum event age in template.yaml).
    None,
}

/// An asynchronous invocation (EventBridge rule or schedule target), delivered after [`EVENT_DELIVERY`]. `work` runs
/// once per attempt.
pub fn invoke_async<E, F, Fut>(function: Arc<Function<E>>, retries: AsyncRetries, work: F)
where
    E: Clone + Send + 'static,
    F: Fn(E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ()>> + Send,
{
    tokio::spawn(async move {
        tokio::time::sleep(EVENT_DELIVERY).await;
        let mut backoff = ASYNC_THROTTLE_RETRY_FIRST;
        let mut error_waits = ASYNC_ERROR_RETRY_WAITS.iter();
        loop {
            match function.invoke(&work).await {
                Ok(Ok(())) => return,
                _ if retries == AsyncRetries::None => return,
                Ok(Err(())) => match error_waits.next() {
                    Some(wait) => tokio::time::sleep(*wait).await,
                    // To the on-failure destination: the post stays due and a later tick hands it out again.
                    None => return,
                },
                Err(Throttled) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ASYNC_THROTTLE_RETRY_MAX);
                }
            }
        }
    });
}

/// The intake API's traffic from `from` to `until`: [`INTAKE_REQUESTS_PER_SECOND`] on average, arriving at random
/// (a Poisson process: users do not coordinate, so requests come in bursts), each holding an execution for
/// [`INTAKE_REQUEST`]; a request that finds the pool full is throttled (a 429 to the user).
pub async fn intake_traffic(intake: Arc<Function<()>>, from: Instant, until: Instant) {
    let mean_gap = 1.0 / f64::from(INTAKE_REQUESTS_PER_SECOND);
    let mut at = from;
    for n in 0u64.. {
        // Exponential gaps from a uniform draw in (0, 1].
        let uniform = (splitmix(n) >> 11) as f64 / (1u64 << 53) as f64;
        at += Duration::from_secs_f64(-mean_gap * (1.0 - uniform).ln());
        if at >= until {
            return;
        }
        tokio::time::sleep_until(at).await;
        let intake = intake.clone();
        tokio::spawn(async move {
            let _answered_or_throttled = intake.invoke(|()| tokio::time::sleep(INTAKE_REQUEST)).await;
        });
    }
}

/// A `rate(1 minute)` schedule from `first_minute` on, each tick an asynchronous invocation of `function` running
/// `work`, forever.
pub async fn minute_schedule<E, F, Fut>(
    function: Arc<Function<E>>,
    retries: AsyncRetries,
    first_minute: Instant,
    work: F,
) where
    E: Clone + Send + 'static,
    F: Fn(E) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ()>> + Send,
{
    for n in 0u64.. {
        let minute = first_minute + TICK_INTERVAL * u32::try_from(n).unwrap_or(u32::MAX);
        tokio::time::sleep_until(minute + tick_offset(n)).await;
        invoke_async(function.clone(), retries, work.clone());
    }
}

/// When the `n`th tick of a `rate(1 minute)` schedule fires: at some second within its minute. Pseudo-random but
/// the same in every run, so both designs meet the same ticks.
fn tick_offset(n: u64) -> Duration {
    Duration::from_millis(splitmix(n ^ TICK_STREAM) % TICK_INTERVAL.as_millis() as u64)
}

/// Keeps the ticks' draws apart from the intake's.
const TICK_STREAM: u64 = 0x5EED_7C1C;

/// SplitMix64: a fixed, well-mixed sequence without a random-number dependency, so every run (and both designs)
/// meets the same ticks and the same requests.
fn splitmix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
