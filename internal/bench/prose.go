package bench

// The fixed text of BENCHMARKS.md: what is measured and how. The figures
// around it are generated.

const fleetProse = `## The fleet

Per account-region: 5% staging, the rest production, 0.5% of production with a lost SSM agent (listed, never sent
to). 1 account-region is one account and region; 8 are 2 accounts (the second through an assumed role) x 4
regions; 40 are 10 accounts x 4 regions. The simulator runs its **realistic fleet model** (` + "`awssim.Realistic`" + `,
seeded with a fixed seed, so every run of patchgate and the script is the same; the waiter's calls vary by about 1%
from run to run, as the SDK waiter's backoff is jittered; see docs/simulator.md): patch durations drawn from a long-tailed
distribution, agent start delays, reboots that add minutes, a small share of failures and timeouts, Inspector rescans
on each instance's inventory cadence (every 30 minutes with jitter) rather than a fixed delay after the patch, about 30
findings per instance (most LOW and MEDIUM, some without a fix, a long tail), other tools' commands in
ListCommands, and per-operation rate limits answering ThrottlingException above them.

`

const waysProse = `The policy: staging at 50% concurrency gated on compliance and an Inspector rescan (HIGH and above), a 30-minute
soak, then production in waves of 10%, 50% and 100% at 50% concurrency, gated the same way (CRITICAL and above).
Both phases need 90% success (a wave of 12 can lose one) and allow 5% errors (at least 2 where 5% of an account-region's smallest wave is less),
as an operator sets them against the model's few failures. The model's baseline approves every fix (its
` + "`unpatchedShare`" + ` is off), so the gates pass and every run can pass: the bench measures cost; the gate's
failures are tested in internal/verify and internal/rollout.

## The ways compared

**patchgate**: ` + "`patchgate run`" + ` in process, its default settings, its real SDK clients. Its polls
(` + "`internal/rollout/pace.go`" + `) follow a record of the policy's completions (each invocation's end after its
command's send, shared by the policy's account-regions): a wave is looked at by the optimal inspection density of its
end (Keller's approximation: looks come at a density of sqrt(h/(2*1 s)), h the hazard of the end given what still
runs), so rarely while many invocations run (at least hourly, for progress) and every few minutes once the last are
due. Only the account-region that ends a phase last delays the next, so each weighs its looks by its chance of being
that one (a normal draw per account-region: when its wave began, the phase's mean wave time and spread, the waves it
has left): at one chance in n its looks, and its Inspector rescan wait's, are sqrt(n) times rarer (n at most 16).
Where another account-region is surely expected to end the phase later, a look may wait half that lead; a phase's last
wave under an Inspector gate may look up to 7.5 minutes later (the rescans come half an inventory pass after the last
patch on average). Before the record knows anything (the run's first wave), the looks grow from 5 s, doubling alone
and 1+sqrt(n) times at one chance in n, then follow the wave's own decline and its tail.

**The competent script** (` + "`script.go`" + `) is what a careful engineer writes with the SDK, on the same fleet,
phases, waves and soak, every account-region in parallel. Per phase: DescribeInstanceInformation with the phase's tag
filters, 50 a page, keeping agents Online; per wave, SendCommand with explicit ids, 50 at a time, with the phase's
MaxConcurrency and MaxErrors; every 60 seconds, ListCommands for each of the wave's commands still running (by
CommandId) until each is terminal, stopping when failed invocations exceed MaxErrors; after the phase's waves,
DescribeInstancePatchStates 50 ids a call; then it waits Inspector's documented 30-minute inventory cadence plus 10 minutes of margin (the cadence has jitter) and lists
the findings of the phase's instances whose patch states are clean with ListFindings (resourceId filters hold at most 10 ids, so 10 instances a
listing), ACTIVE, a fix available, at or above the phase's severity, 100 a page; any such finding fails the phase.
It keeps no lock, no send intent and no evidence, and does not reconcile, so it is cheaper per instance than a tool
that must never send twice. Its fixed 40-minute rescan wait counts as patch time, not overhead.

**The waiter** (` + "`naive.go`" + `) is what many scripts do: SendCommand in chunks of 50, then the SDK's
` + "`CommandExecuted`" + ` waiter per instance (GetCommandInvocation until done, 5 s to 120 s apart) and one
DescribeInstancePatchStates per instance; it does not read Inspector. (` + "`aws ssm wait command-executed`" + `
gives up after about 100 seconds, so no real script can use the CLI's waiter for 30-minute patches.) Under the model's
rate limits many of its thousands of concurrent waits give up (ThrottlingException after the SDK's retries); it counts
each as a failed instance, as a script checking the waiter's error would, and so fails phases: its call count then
stops early and its patch time is not comparable. At 50,000 instances it
costs about 5 minutes of wall time per case, which would push ` + "`make bench`" + ` past 25 minutes, so it runs up
to ` + "`-fleet.naive-max`" + ` instances (default 10,000; ` + "`-fleet.naive-max=50000`" + ` adds the 50,000 cases).

## The floor

The fewest calls with which any tool can do what the policy asks on this fleet, **computed** from the fleet and the
policy before the run (` + "`floor.go`" + `, never measured), assuming it knows exactly when each wave ends and uses
the largest pages AWS allows. Per account-region and phase:

- **DescribeInstanceInformation**: ceil(instances the phase's tags match / 50), at least 1 (lost agents are listed too:
  a tag filter cannot leave them out).
- **SendCommand**: per wave, ceil(instances sent / 50); waves are the policy's cuts of the online instances.
- **ListCommands**: 1 per wave: one page filtered to commands still in progress (ListCommands' filters
  DocumentName AWS-RunPatchBaseline, Status InProgress, InvokedAfter the wave's first send, so other tools' commands
  stay out), read just after the wave's last invocation ends; no command of the wave on it is the wave done.
- **DescribeInstancePatchStates** (compliance gate): ceil(instances sent / 50), after patching only.
- **ListCoverage** (Inspector gate): one coverage pass over the patched instances, ceil(instances sent / 200).
- **ListFindings** (Inspector gate): the findings the gate must see after patching, at 100 a page, at least 1 (an empty
  page is how a tool learns there are none): ACTIVE, a fix available, at or above the phase's severity (or a required
  CVE), on the instances the phase's tags match. On a patched instance these are the findings the patch leaves
  (the baseline does not approve the fix, or the rescan brings them); on an instance that was not patched, all of
  them. Findings without a fix are not in the floor: the gate does not need them to decide.
- **Fixed per account-region**: the run lock, 1 PutParameter and 1 DeleteParameter: two runs on one estate must not
  both send, so any tool that runs unattended needs a lock.
- **AssumeRole**: 1 per account reached through a role (credentials hold for every region of the account).

Not in the floor: sts:GetCallerIdentity, patch-state or findings reads before patching, send intents, polls beyond
one per wave, listings of invocations. Whatever patchgate spends on them shows in *Where patchgate exceeds the floor*.
The floor assumes every online instance's patch succeeds, which slightly undercounts what a real run must read.

`

const targetsProse = `Judged at 10,000 and 50,000 instances over 1 and 8 account-regions, under the realistic model; ` + "`make bench`" + `
fails when one is missed (` + "`-fleet.check`" + `). Every patchgate run must also pass.

| target | why |
|---|---|
| API calls <= 1.3x the floor | what patchgate spends beyond the job itself: polls, reads before patching, intents, locks |
| >= 8x fewer calls than the competent script | the reason to use patchgate rather than an afternoon's script |
| orchestration overhead <= 1% of patch time | patchgate must not make a maintenance window longer |
| calls per instance over 8 account-regions < 1.5x that over 1 | fixed per-account-region costs stay small |
| zero ThrottlingException reaching a verdict | a throttle is retried or paced, never turned into a failed or inconclusive run or a reason the user reads |
| peak heap <= 256 MiB at 50,000 instances over 8 | fits a hosted runner beside the simulator (the heap includes the simulator's) |
| render <= 3x json.Marshal at 50,000 | the job summary and the comment of the run's actual result, each timed against json.Marshal of the same result in the same process, median of 5 repetitions: a machine-independent ratio |

`

const scaleProse = `## 200,000 instances over 40 account-regions

The 200,000-instance case (10 accounts x 4 regions, simulated time; in the tables above, reported, not judged) runs
with ` + "`--parallel 40`" + `, every account-region at once, so its clock time is that of its longest account-region.
With the default ` + "`--parallel 16`" + ` the 40 account-regions run in three rounds and the clock time about triples (a
run on this bench: 44h26m against 15h36m of patch time). Its reports are not rendered (over ten minutes of wall time
for one summary and one comment of a result with about 6 million findings). What bounds patchgate there is not its
own CPU or memory but:

- **SSM rate limits per account and region.** SendCommand, ListCommands, DescribeInstanceInformation and
  DescribeInstancePatchStates are throttled per account-region; patchgate's calls per account-region grow with the
  instances in that account-region, not with the fleet, so 40 account-regions of 5,000 are no harder than one of
  5,000. A single account-region of 200,000 would be bounded by those rate limits and by SendCommand's 50 ids.
- **GitHub job time.** A job on a GitHub-hosted runner ends after 6 hours; on a self-hosted runner after 5 days, and
  a workflow run after 35 days (GitHub's documented usage limits). Under the realistic model even 10,000 instances
  take well over 6 hours of clock time (*Results*): every wave waits for its slowest installs (the model's slow tail
  runs to 3 hours) in two rounds at 50% concurrency, then for Inspector's rescans, and production has three waves.
  The clock time is set by the policy and the fleet, not by the number of instances, and no orchestrator shortens it.

How a user splits the work: a **matrix job per account** (or per account and region: the policy's ` + "`accounts`" + `
and ` + "`regions`" + `, one entry per job; a matrix holds up to 256 jobs), each with its own lock in its own
account-region, so one slow or failing account does not hold the others; and **resume by run id**: a run that must
outlive a job keeps its state in AWS (the lock and the send intents in Parameter Store), and a later job with the same
` + "`--run-id`" + ` (default GITHUB_RUN_ID) resumes it without sending anything twice (docs/failure-modes.md).
`

// frontierProse takes the number of seeds, their list, and the judged
// figures' seed.
const frontierProse = `Every look at a running wave is a call, and every look that comes late delays the next wave: patchgate's pacer
trades one against the other. The engine's ` + "`PollScale`" + ` (` + "`rollout.Options`" + `) spaces three of the pacer's
rules s times further apart: the least share of a wave's age between looks, the tail watch (a share of the age, still
at most PollMax, so in a multi-hour tail large scales change little), and the inspection density (a look worth s²
times the lag). Looks at a predicted event, the growth at an unknown pace, PollMin, PollMax and the hourly look for
progress (the net under MaxErrors) stay. Each judged case runs below at each PollScale over %d seeds of the realistic
model (%s); the judged figures above are seed %d at PollScale 1. A seed is one draw of the fleet (install times,
failures, rescans), so the range is what a user's figures may be, where the table above is one of them. A run that
did not pass meets no target and is left out of the figures.

Polls are not all of what patchgate spends beyond the floor: the failures' invocation listings, the send intents
and the lock, a role session an hour (role chaining's limit), and the Inspector coverage passes while rescans come
(*Where patchgate exceeds the floor*). Spacing polls cannot save those. *Ends known* is what a run would have cost had
patchgate known when each wave would end: every ListCommands replaced by one look at each wave's end and the hourly
progress looks before it, everything else as measured. It is no pacer's figure, but the least any pacing of
patchgate's design could reach.

`
