//! The command line, as clap parses it.

use clap::{ArgAction, Args, Parser, Subcommand};

const TOP_HELP: &str = "\
Configuration: each flag above overrides its variable (STATE_TABLE, MESSAGE_TABLE,
TWILIO_SECRET_ID, JWT_SECRET_ID, DEFAULT_COUNTRY_CODE, PRIMARY_DISPATCHER_ID); AWS
region, profile, credentials and AWS_ENDPOINT_URL come from the AWS SDK's own
variables and files.

Exit status: 0 success; 1 when a check finds problems, or for an unknown dispatcher
ID or message SID; 2 on bad usage or a failed AWS call (one line on stderr).

Examples:
  qdn dispatchers list
  qdn dispatchers check
  qdn --json dispatchers show sergio-main
  qdn token sergio-main --ttl 1h
  qdn trail SM0123456789abcdef0123456789abcdef";

/// The QDN SMS relay's operator CLI: dispatcher items, dispatchers' tokens, message
/// trails and webhook smoke tests, built on the relay's own core crate.
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
    /// The dispatcher item at the head of the cascade [env: PRIMARY_DISPATCHER_ID] [default: sergio-main]
    #[arg(long, global = true, value_name = "ID")]
    pub primary_dispatcher_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Every dispatcher item: id, phone, available, on duty, heartbeat age, backup, tertiary
    #[command(after_help = "\
Numbers are shown normalised to E.164; one that does not normalise is shown as
`invalid \"<as stored>\"`.

Examples:
  qdn dispatchers list
  qdn --json dispatchers list")]
    List,
    /// One dispatcher item, numbers normalised, problems flagged
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
    /// Check every item (numbers normalise, primary exists, TTL sane); exit 1 on problems
    #[command(after_help = "\
The same checks the dispatcher-heartbeat function alerts on. Prints each problem;
exit status 1 if there is any.

Examples:
  qdn dispatchers check
  qdn dispatchers check --primary-dispatcher-id sergio-main")]
    Check,
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
