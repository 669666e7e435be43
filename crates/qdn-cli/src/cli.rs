//! The command line, as clap parses it.

use clap::{ArgAction, Args, Parser, Subcommand};

const TOP_HELP: &str = "\
Who is primary: the rota (weekly shifts in one time zone plus overrides, the `#rota`
item of STATE_TABLE) decides; PRIMARY_DISPATCHER_ID is primary whenever no rota
covers the instant (no rota at all, a gap in the week, an unreadable rota).

Configuration: each flag above overrides its variable (STATE_TABLE, MESSAGE_TABLE,
TWILIO_SECRET_ID, JWT_SECRET_ID, DEFAULT_COUNTRY_CODE, PRIMARY_DISPATCHER_ID);
`qdn who` also reads HEARTBEAT_MAX_AGE_SECS (default 300) as the functions do. AWS
region, profile, credentials and AWS_ENDPOINT_URL come from the AWS SDK's own
variables and files.

Exit status: 0 success; 1 when a check finds problems, or for an unknown dispatcher
ID or message SID; 2 on bad usage or a failed AWS call (one line on stderr).

Examples:
  qdn who
  qdn rota show
  qdn rota set rota.txt
  qdn rota override ana --from now --to +2h
  qdn dispatchers list
  qdn dispatchers check
  qdn --json dispatchers show sergio-main
  qdn token sergio-main --ttl 1h
  qdn trail SM0123456789abcdef0123456789abcdef
  qdn messages --since 2h --undelivered
  qdn redeliver SM0123456789abcdef0123456789abcdef
  qdn timers dead";

const ROTA_HELP: &str = "\
The rota is text, the same in the file `qdn rota set` reads, in `qdn rota show` and
in the stored item (`#rota` in STATE_TABLE). `#` starts a comment:

  zone America/Los_Angeles                # one IANA time zone, for every line
  mon-fri 06:00-14:00 sergio-main         # DAYS HH:MM-HH:MM DISPATCHER
  mon-fri 14:00-22:00 ana                 # local times; daylight saving followed
  daily   22:00-06:00 night-desk          # an end at or before the start: next day
  sat,sun 06:00-22:00 weekend-desk        # mon, mon-fri, fri-mon, sat,sun, daily
  override 2026-12-24T18:00 2026-12-25T06:00 ana   # FROM TO DISPATCHER: wins

An override's times are local to the zone, or RFC 3339 with an offset. Where no
shift or override covers an instant, PRIMARY_DISPATCHER_ID is primary.

Examples:
  qdn rota show > rota.txt; $EDITOR rota.txt; qdn rota set rota.txt
  qdn rota override ana --from now --to +2h
  qdn --json rota show";

/// The QDN SMS relay's operator CLI: who is primary (the rota), dispatcher items,
/// dispatchers' tokens, message trails and webhook smoke tests, built on the relay's
/// own core crate.
#[derive(Debug, Parser)]
#[command(name = "qdn", version, after_help = TOP_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Print one JSON document on stdout instead of tables
    #[arg(long, global = true)]
    pub json: bool,
    /// DynamoDB table of dispatcher items [env: STATE_TABLE] [default: qdn-dispatcher-state]
    #[arg(long, global = true, value_name = "TABLE")]
    pub state_table: Option<String>,
    /// DynamoDB table of the message log [env: MESSAGE_TABLE] [default: qdn-message-log]
    #[arg(long, global = true, value_name = "TABLE")]
    pub message_table: Option<String>,
    /// Secrets Manager secret of the Twilio account [env: TWILIO_SECRET_ID]
    #[arg(long, global = true, value_name = "SECRET_ID")]
    pub twilio_secret_id: Option<String>,
    /// Secrets Manager secret holding the HS256 key [env: JWT_SECRET_ID]
    #[arg(long, global = true, value_name = "SECRET_ID")]
    pub jwt_secret_id: Option<String>,
    /// Country calling code for numbers written without one [env: DEFAULT_COUNTRY_CODE] [default: 1]
    #[arg(long, global = true, value_name = "CODE")]
    pub default_country_code: Option<String>,
    /// The primary when no rota covers the instant (no rota, a gap, an unreadable rota) [env: PRIMARY_DISPATCHER_ID] [default: sergio-main]
    #[arg(long, global = true, value_name = "ID")]
    pub primary_dispatcher_id: Option<String>,
    /// The acknowledgement timers' queue [env: ACK_QUEUE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub ack_queue_url: Option<String>,
    /// The timers' dead-letter queue [env: ACK_DEAD_LETTER_QUEUE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub ack_dead_letter_queue_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Who is primary now (and why: shift, override or fallback), until when, and who is next
    #[command(after_help = "\
Times are in the rota's zone (UTC without a rota). A note says when the primary now
has no dispatcher item or is not available (the cascade would pass over them).
With --json: {\"zone\", \"now\": {\"dispatcher\", \"source\", \"since\", \"until\",
\"available\", ...}, \"next\": {...} or null}, times as RFC 3339 and as Unix seconds.

Examples:
  qdn who
  qdn --json who")]
    Who,
    /// Show, replace or add to the rota: who is primary by shift, and overrides
    #[command(after_help = ROTA_HELP)]
    Rota {
        #[command(subcommand)]
        command: RotaCommand,
    },
    /// Read, write and check the dispatcher items of STATE_TABLE
    #[command(after_help = "\
Examples:
  qdn dispatchers list
  qdn dispatchers show sergio-main
  qdn dispatchers put maria-backup --phone 858-335-4807
  qdn dispatchers check")]
    Dispatchers {
        #[command(subcommand)]
        command: DispatchersCommand,
    },
    /// Print an HS256 JWT for sms-outbound, signed with JWT_SECRET_ID's AWSCURRENT key
    #[command(after_help = "\
Prints the token alone on stdout (with --json: {\"token\", \"sub\", \"exp\"}). The
dispatcher must have an item in STATE_TABLE (else exit 1).

Examples:
  qdn token sergio-main
  qdn token sergio-main --ttl 1h
  curl -H \"Authorization: Bearer $(qdn token sergio-main --ttl 30m)\" ...")]
    Token(TokenArgs),
    /// Show what became of one message: receipt, attempts, forwards, statuses, ACKs
    #[command(after_help = "\
Accepts the driver's inbound MessageSid or the SID of any text the relay forwarded
for it (or of a dispatcher's outbound text). Unknown SID: exit 1.

Examples:
  qdn trail SM0123456789abcdef0123456789abcdef
  qdn --json trail SM0123456789abcdef0123456789abcdef")]
    Trail(TrailArgs),
    /// Recent drivers' texts, newest first, with what became of each
    #[command(after_help = "\
Columns: WHEN (received, as an age), SID (the driver's MessageSid), DRIVER (masked),
TIER and DISPATCHER (where the text is now: the tier, and the primary its cascade
started from), DELIVERY (Twilio's last status for the text out), FATE (delivered,
sent, awaiting ack, escalated, acknowledged, answered, redelivered; or the fates of
a text that reached nobody: undeliverable, outcome unknown, unacknowledged).

Served by the message table's time-ordered indexes (by day, newest first), page by
page until --since: never a scan, and no limit hides a text. Dispatchers' own texts
(commands and answers) are not listed; `qdn trail` shows them. What is listed is what
the message log still holds: each text lives its dispatcher's message_log_ttl
(default a day).

With --json: {\"since\", \"messages\": [{\"message_sid\", \"received_at\", \"driver\",
\"tier\", \"dispatcher_id\", \"delivery_status\", \"fate\", \"unresolved\", ...}]}.

Examples:
  qdn messages
  qdn messages --since 2h --undelivered
  qdn --json messages --dispatcher sergio-main")]
    Messages(MessagesArgs),
    /// Send a text that reached nobody down the cascade again, as now configured
    #[command(after_help = "\
For a text `qdn messages --undelivered` lists (undeliverable, outcome unknown,
unacknowledged), once the cause is mended: the text goes to whoever is primary now
by the rota, down the cascade as the webhook sends it (references, timers, alerts),
once even if two operators run this at once. The trail records it as redelivered by
the operator.

Exit status: 0 when it went out; 1 for a text someone got (delivered, acknowledged,
answered), one still on its way, one already being redelivered, or an unknown SID;
2 when it could not be sent (it stays listed as undelivered, with why).

It reads the variables sms-inbound reads: STATE_TABLE, MESSAGE_TABLE,
ALERT_TOPIC_ARN, TWILIO_SECRET_ID, PRIMARY_DISPATCHER_ID, HEARTBEAT_MAX_AGE_SECS,
DEFAULT_COUNTRY_CODE, REPLY_WINDOW_SECS, and ACK_QUEUE_URL / ACK_TIMEOUT_SECS when
acknowledgement is on.

Examples:
  qdn redeliver SM0123456789abcdef0123456789abcdef")]
    Redeliver(RedeliverArgs),
    /// The acknowledgement timers that failed five times: list them, or put them back
    #[command(after_help = "\
Timers land in the dead-letter queue (ACK_DEAD_LETTER_QUEUE_URL) when ack-timeout
failed on them five times; the alarm qdn-ack-timers-dead-lettered fires. Their texts
may not have escalated. Mend the cause (see the ack-timeout log), then redrive: each
timer goes back to ACK_QUEUE_URL at once and ack-timeout handles it as a late timer
(it escalates only a text still awaiting its ACK).

Each receive waits up to QDN_SQS_WAIT_SECS (0 to 20, default 1) for messages, so an
empty answer means an empty queue. A listing counts as a receive: RECEIVES goes up
by one each time.

Examples:
  qdn timers dead
  qdn timers redrive")]
    Timers {
        #[command(subcommand)]
        command: TimersCommand,
    },
    /// POST a driver's text to a webhook URL, signed exactly as Twilio signs it
    #[command(after_help = "\
Builds the form Twilio sends for an incoming SMS (a fresh MessageSid, AccountSid from
the Twilio secret, To = its from_number unless --to), signs it over --url with the
secret's auth token (X-Twilio-Signature) and prints the answer's status and body.

Exit status: 0 for a 2xx answer, 1 for any other answer, 2 if the URL could not be
reached (or on bad usage, or when the secret cannot be read).

Examples:
  qdn webhook --url https://abc123.execute-api.us-east-1.amazonaws.com/prod/api/v1/sms/inbound \\
      --from 619-555-0123 --body 'Truck 12 at the gate'")]
    Webhook(WebhookArgs),
}

#[derive(Debug, Subcommand)]
pub enum DispatchersCommand {
    /// Every dispatcher item: id, primary now, phone, available, on duty, heartbeat age, backup, tertiary
    #[command(after_help = "\
PRIMARY marks the dispatcher primary now (by the rota's shift or override, or as
PRIMARY_DISPATCHER_ID where no rota covers now). Numbers are shown normalised to
E.164; one that does not normalise is shown as `invalid \"<as stored>\"`.

Examples:
  qdn dispatchers list
  qdn --json dispatchers list")]
    List,
    /// One dispatcher item, numbers normalised, problems flagged, whether primary now
    #[command(after_help = "\
Unknown ID: exit 1.

Examples:
  qdn dispatchers show sergio-main
  qdn --json dispatchers show sergio-main")]
    Show {
        /// The dispatcher ID (the item's key)
        id: String,
    },
    /// Create a dispatcher item (--phone needed) or update only the given fields of one
    #[command(after_help = "\
Every number must normalise, else nothing is written and the exit status is 2. Numbers
are written in E.164. A new item starts available, with last_heartbeat = now.

Examples:
  qdn dispatchers put maria-backup --phone 858-335-4807
  qdn dispatchers put sergio-main --backup 858-335-4807 --tertiary +1-619-555-0199
  qdn dispatchers put sergio-main --on-duty false
  qdn dispatchers put sergio-main --ttl 2d")]
    Put(PutArgs),
    /// Check every item and the rota (numbers, TTLs, gaps, overlaps, who exists); exit 1 on problems
    #[command(after_help = "\
The same checks the dispatcher-heartbeat function alerts on: each item's numbers and
TTL, tiers naming a dispatcher without an item, the rota (unreadable, overlapping
shifts, a gap in the week, a dispatcher without an item), and the
PRIMARY_DISPATCHER_ID item when the rota leaves it time to cover. Prints each
problem; exit status 1 if there is any.

Examples:
  qdn dispatchers check
  qdn dispatchers check --primary-dispatcher-id sergio-main")]
    Check,
}

#[derive(Debug, Subcommand)]
pub enum TimersCommand {
    /// List the dead-lettered timers, each with the text it belonged to
    #[command(after_help = "\
Reads without taking: every timer stays in the queue. With --json: {\"timers\":
[{\"sqs_message_id\", \"message_sid\", \"forwarded_sid\", \"reference\", \"sent_at\",
\"receive_count\", \"fate\", ...}]}.

Examples:
  qdn timers dead
  qdn --json timers dead")]
    Dead,
    /// Move every dead-lettered timer back to the timer queue, to be handled now
    #[command(after_help = "\
Each timer is sent to ACK_QUEUE_URL without delay, then deleted from the dead-letter
queue (a timer is never dropped before it is back). A body that is not a timer is
left where it is and reported (exit 1).

Examples:
  qdn timers redrive")]
    Redrive,
}

#[derive(Debug, Args)]
pub struct MessagesArgs {
    /// How far back: 90s, 30m, 2h, 1d (at most 366d)
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub since: String,
    /// Only the texts that reached nobody: undeliverable, outcome unknown, unacknowledged
    #[arg(long)]
    pub undelivered: bool,
    /// Only the texts whose cascade started at this dispatcher
    #[arg(long, value_name = "ID")]
    pub dispatcher: Option<String>,
    /// Items per page of the index (all pages are read)
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub page_size: u16,
}

#[derive(Debug, Args)]
pub struct RedeliverArgs {
    /// The driver's inbound MessageSid (as `qdn messages` lists it)
    pub message_sid: String,
}

#[derive(Debug, Subcommand)]
pub enum RotaCommand {
    /// Print the rota in its text format (what `rota set` reads), and its problems
    #[command(after_help = "\
`qdn rota show > rota.txt; qdn rota set rota.txt` puts back the same rota. The first
line is a comment naming the zone and when the rota was written; overrides already
over are left out (the comment says how many are stored); problems (a gap, an
overlap, a dispatcher without an item) follow as `# PROBLEM:` comment lines. Exit
status 0, even with problems; 1 when the stored rota is unreadable.

With --json: {\"zone\", \"shifts\": [{\"days\", \"from\", \"to\", \"dispatcher\"}],
\"overrides\": [{\"from\", \"to\", \"dispatcher\"}] (RFC 3339 in the zone), \"text\",
\"updated_at\", \"past_overrides\", \"problems\"}.

Examples:
  qdn rota show
  qdn rota show > rota.txt
  qdn --json rota show")]
    Show,
    /// Replace the whole rota with FILE's, after checking it; then say who is primary
    #[command(after_help = "\
The file replaces everything: its shifts and its overrides are the rota afterwards
(an override stored now and missing from the file is gone). Nothing is written, and
the exit status is 2 with the line at fault, when the file does not parse (an
unknown zone, a bad line), two shifts overlap, or a shift or override names a
dispatcher without an item. A gap in the week is written with a warning: the
PRIMARY_DISPATCHER_ID covers it, and the heartbeat reports it. Overrides already over
are dropped (with a warning). What is stored is the rota rewritten canonically, so
the file's comments and spacing are not kept.

The write is conditional on the rota read before it: if someone changed it
meanwhile, nothing is written (exit 2; run again).

Examples:
  qdn rota set rota.txt
  qdn rota show | sed 's/ana$/maria-backup/' | qdn rota set -")]
    Set {
        /// The rota file (`-` reads standard input)
        file: String,
    },
    /// Add an override: DISPATCHER is primary from --from to --to, whatever the shifts
    #[command(after_help = "\
A time is `now`, `+30m` / `+2h` / `+1d` from now, a local time in the rota's zone
(2026-12-24T18:00, or `2026-12-24 18:00`), or RFC 3339 with an offset or Z. The
dispatcher needs an item (else exit 1); --to must be after --from and in the future
(else exit 2). The rota's other shifts and overrides stay; overrides already over are
dropped. Without a rota, one is created in zone UTC with no shifts (so
PRIMARY_DISPATCHER_ID is primary outside the override). Where overrides overlap, the
later-starting one is primary.

Examples:
  qdn rota override ana --from now --to +2h
  qdn rota override ana --from '2026-12-24 18:00' --to '2026-12-25 06:00'
  qdn rota override ana --from 2026-12-24T18:00-08:00 --to 2026-12-25T06:00-08:00")]
    Override(OverrideArgs),
}

#[derive(Debug, Args)]
pub struct OverrideArgs {
    /// The dispatcher ID to make primary
    pub id: String,
    /// When the override starts: now, +2h, 2026-12-24T18:00 (the rota's zone), RFC 3339
    #[arg(long, value_name = "TIME", default_value = "now")]
    pub from: String,
    /// When it ends: +2h, 2026-12-25T06:00 (the rota's zone), RFC 3339
    #[arg(long, value_name = "TIME")]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// The dispatcher ID (the item's key)
    pub id: String,
    /// The dispatcher's own phone number
    #[arg(long, value_name = "N")]
    pub phone: Option<String>,
    /// The backup dispatcher's number (backup_dispatcher)
    #[arg(long, value_name = "N")]
    pub backup: Option<String>,
    /// The tertiary contact's number (tertiary_contact)
    #[arg(long, value_name = "N")]
    pub tertiary: Option<String>,
    /// How long message-log entries routed through this dispatcher live
    /// (message_log_ttl): seconds, or 90s, 30m, 12h, 1d
    #[arg(long, value_name = "SECS")]
    pub ttl: Option<String>,
    /// The dispatcher's own ON/OFF switch (on_duty)
    #[arg(long, value_name = "true|false", action = ArgAction::Set, value_parser = clap::value_parser!(bool))]
    pub on_duty: Option<bool>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The dispatcher ID: the token's `sub`
    pub dispatcher_id: String,
    /// How long the token lives: 90s, 30m, 12h, 1d (at most 30d)
    #[arg(long, value_name = "DURATION", default_value = "12h")]
    pub ttl: String,
}

#[derive(Debug, Args)]
pub struct TrailArgs {
    /// An inbound MessageSid, or the SID of a forwarded (or outbound) text
    pub message_sid: String,
}

#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// The URL to POST to (and sign over), e.g. https://HOST/STAGE/api/v1/sms/inbound
    #[arg(long)]
    pub url: String,
    /// The driver's number (From), normalised
    #[arg(long, value_name = "N")]
    pub from: String,
    /// The text (Body)
    #[arg(long, value_name = "TEXT")]
    pub body: String,
    /// The number texted (To); default: the Twilio secret's from_number
    #[arg(long, value_name = "N")]
    pub to: Option<String>,
}
