//! `provisioner apply|plan|verify|destroy|template`: an SQS queue and an IAM user (or role) allowed only
//! to send to it, as one repeatable command. Parses flags once, builds the clients, and hands
//! over to the library; prints a summary on stdout (never a secret) and errors as one line on
//! stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use aws_access::connection::Format;
use aws_access::sdk::AwsOptions;
use clap::{Parser, Subcommand, ValueEnum};
use provisioner::plan::PrincipalKind;
use provisioner::{
    Auth, Clients, DestroyPlan, DestroyReport, OutFile, Outcome, Plan, ProvisionError, Spec,
    VerifyReport,
};

#[derive(Debug, Parser)]
#[command(
    name = "provisioner",
    version,
    about = "An SQS queue and an IAM user (or role) allowed only sqs:SendMessage on it, with its credentials",
    after_help = "Without --out, apply writes the forwarder's configuration to ./NAME.forwarder.json \
                  (or .env with --format env), mode 0600; it holds the secret, which is never printed."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, or find and keep: the queue (and DLQ), the user or role, its policy, its key,
    /// and the configuration file.
    Apply(Args),
    /// Print what apply would create or change, and the exact policy document; change nothing.
    Plan(Args),
    /// Prove least privilege on the live account.
    Verify(Args),
    /// Delete keys, policy, user or role, queue and DLQ, in reverse order; idempotent.
    Destroy(Args),
    /// Print a CloudFormation template of the queue, the role and its policies, for a customer
    /// to deploy in their own account; contacts nothing.
    Template(TemplateArgs),
}

#[derive(Debug, clap::Args)]
struct TemplateArgs {
    /// The queue's name (1 to 80 of A-Z a-z 0-9 - _); `.fifo` is added with --fifo.
    #[arg(long, default_value = "cloudevents")]
    name: String,
    /// A FIFO queue.
    #[arg(long)]
    fifo: bool,
    /// Only `role`: a customer's account gives the platform a role to assume.
    #[arg(long, value_enum, default_value_t = AuthArg::Role)]
    auth: AuthArg,
    /// The platform's 12-digit account, allowed to assume the role.
    #[arg(long)]
    trust_account: Option<String>,
    /// The external id the platform presents; generated when not given.
    #[arg(long)]
    external_id: Option<String>,
    /// The role's name; NAME-forwarder by default.
    #[arg(long)]
    user: Option<String>,
    /// The region the customer deploys in (its partition goes into the trust policy).
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// The template's language.
    #[arg(long, value_enum, default_value_t = TemplateFormat::Cloudformation)]
    format: TemplateFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TemplateFormat {
    Cloudformation,
}

#[derive(Debug, clap::Args)]
struct Args {
    /// The queue's name (1 to 80 of A-Z a-z 0-9 - _); `.fifo` is added with --fifo.
    #[arg(long)]
    name: String,
    /// A FIFO queue.
    #[arg(long)]
    fifo: bool,
    /// A dead-letter queue NAME-dlq with maxReceiveCount 5.
    #[arg(long)]
    dlq: bool,
    /// The region; by default AWS_REGION or the profile's.
    #[arg(long)]
    region: Option<String>,
    /// An endpoint other than AWS's own; by default AWS_ENDPOINT_URL.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// The forwarder's configuration file (mode 0600, replaced atomically).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The configuration file's format.
    #[arg(long, value_enum, default_value_t = FormatArg::Json)]
    format: FormatArg,
    /// The IAM user's (or role's) name; NAME-forwarder by default.
    #[arg(long)]
    user: Option<String>,
    /// A user with an access key, or a role another account assumes.
    #[arg(long, value_enum, default_value_t = AuthArg::User)]
    auth: AuthArg,
    /// With --auth role: the 12-digit account allowed to assume the role.
    #[arg(long)]
    trust_account: Option<String>,
    /// With --auth role: the external id it must present; generated when not given.
    #[arg(long)]
    external_id: Option<String>,
    /// Create a new access key, write it, then delete the old one(s).
    #[arg(long)]
    rotate_key: bool,
    /// With destroy: delete queues that still hold messages (and the messages with them).
    #[arg(long)]
    force: bool,
    /// With plan: list what destroy would delete (and refuse) instead of what apply would do.
    #[arg(long)]
    destroy: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Json,
    Env,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthArg {
    User,
    Role,
}

#[tokio::main]
async fn main() -> ExitCode {
    // The SDK's own warnings (a missing profile file, IMDS) would break the one-line error; what
    // matters reaches the user as that error. RUST_LOG shows more.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("off,provisioner=warn,forwarder=warn")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The library's errors hold their causes in their messages: no need for sources.
            let text = error.to_string();
            let line: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("error: {}", line.join(" | "));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (command, args) = match &cli.command {
        Command::Apply(a) => ("apply", a),
        Command::Plan(a) => ("plan", a),
        Command::Verify(a) => ("verify", a),
        Command::Destroy(a) => ("destroy", a),
        Command::Template(t) => {
            println!("{}", t.template()?.text);
            return Ok(());
        }
    };
    let spec = args.spec()?;
    // Everything that needs no request is checked before LocalStack or AWS is contacted.
    spec.validate()?;
    let clients = args.clients().await?;
    match command {
        "apply" => print_outcome(&provisioner::apply(&clients, &spec).await?),
        "plan" if args.destroy => {
            print_destroy_plan(&provisioner::plan_destroy(&clients, &spec).await?)
        }
        "plan" => print_plan(&provisioner::plan(&clients, &spec).await?),
        "verify" => match provisioner::verify(&clients, &spec).await {
            Ok(report) => print_verify(&report),
            Err(ProvisionError::Verify(report)) => {
                print_verify(&report);
                bail!("verify failed: {}", report.failures().join("; "));
            }
            Err(e) => return Err(e.into()),
        },
        _ => match provisioner::destroy(&clients, &spec).await {
            Ok(report) => print_destroy(&report),
            Err(ProvisionError::Destroy(report)) => {
                print_destroy(&report);
                bail!(
                    "destroy left {} failure(s): {}",
                    report.failures.len(),
                    report.failures.join("; ")
                );
            }
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}

impl TemplateArgs {
    fn template(&self) -> anyhow::Result<provisioner::template::Template> {
        let TemplateFormat::Cloudformation = self.format;
        let auth = match self.auth {
            AuthArg::User => Auth::User,
            AuthArg::Role => Auth::Role {
                trust_account: self.trust_account.clone(),
                external_id: self.external_id.clone(),
            },
        };
        let spec = Spec {
            fifo: self.fifo,
            auth,
            user_name: self.user.clone(),
            ..Spec::new(&self.name)
        };
        Ok(provisioner::template::cloudformation(&spec, &self.region)?)
    }
}

impl Args {
    fn spec(&self) -> anyhow::Result<Spec> {
        let auth = match self.auth {
            AuthArg::User => {
                if self.trust_account.is_some() || self.external_id.is_some() {
                    bail!("--trust-account and --external-id go with --auth role");
                }
                Auth::User
            }
            AuthArg::Role => Auth::Role {
                trust_account: self.trust_account.clone(),
                external_id: self.external_id.clone(),
            },
        };
        let format = match self.format {
            FormatArg::Json => Format::Json,
            FormatArg::Env => Format::Env,
        };
        let mut spec = Spec {
            name: self.name.clone(),
            fifo: self.fifo,
            dlq: self.dlq,
            auth,
            user_name: self.user.clone(),
            rotate_key: self.rotate_key,
            force: self.force,
            out: None,
        };
        let path = match &self.out {
            Some(path) => path.clone(),
            None => {
                let names = spec.names()?;
                PathBuf::from(format!("{}.forwarder.{format}", names.queue.base()))
            }
        };
        spec.out = Some(OutFile { path, format });
        Ok(spec)
    }

    async fn clients(&self) -> anyhow::Result<Clients> {
        let from_env = std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|v| !v.is_empty());
        let options = AwsOptions {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone().or(from_env),
            ..AwsOptions::default()
        };
        Ok(Clients::new(&options).await?)
    }
}

fn print_outcome(outcome: &Outcome) {
    let r = &outcome.resources;
    println!("account     {}", r.account);
    println!("queue       {}  {}", r.queue_url, r.queue_arn);
    if let Some((_, url, arn)) = &r.dlq {
        println!("dlq         {url}  {arn}");
    }
    println!(
        "{:<11} {}  {}",
        r.principal_kind.to_string(),
        r.principal_name,
        r.principal_arn
    );
    println!(
        "policy      {} (sqs:SendMessage on {} only)",
        r.policy_name, r.queue_arn
    );
    let file = outcome.out.as_ref().map(|p| p.display().to_string());
    match r.principal_kind {
        PrincipalKind::User => {
            let id = outcome.config.access_key.as_deref().unwrap_or("(none)");
            match &file {
                Some(file) => println!("access key  {id} (secret written to {file}, mode 0600)"),
                None => println!("access key  {id} (secret not written)"),
            }
        }
        PrincipalKind::Role => {
            println!(
                "external id {}",
                outcome.config.external_id.as_deref().unwrap_or("(none)")
            );
            if let Some(file) = &file {
                println!("config      {file}");
            }
        }
    }
    if outcome.is_unchanged() {
        println!("no changes: everything was already in place");
    } else {
        println!("changes:");
        for change in &outcome.changes {
            println!("  - {change}");
        }
    }
    for warning in &outcome.warnings {
        println!("warning: {warning}");
    }
}

/// `empty` when there are no items, else `header` and the items as a list.
fn print_list<T: std::fmt::Display>(empty: &str, header: &str, items: &[T]) {
    if items.is_empty() {
        println!("{empty}");
        return;
    }
    println!("{header}");
    for item in items {
        println!("  - {item}");
    }
}

fn print_plan(plan: &Plan) {
    print_list(
        "no changes: everything is in place",
        "apply would:",
        &plan.changes,
    );
    for kept in &plan.kept {
        println!("keep {kept}");
    }
    for warning in &plan.warnings {
        println!("warning: {warning}");
    }
    println!("policy document:\n{}", plan.policy.to_pretty_json());
    if let Some(trust) = &plan.trust {
        println!("trust policy document:\n{}", trust.to_pretty_json());
    }
    println!(
        "queue policy document:\n{}",
        serde_json::to_string_pretty(&plan.queue_policy).unwrap_or_default()
    );
}

fn print_destroy_plan(plan: &DestroyPlan) {
    print_list(
        "destroy would delete nothing",
        "destroy would delete:",
        &plan.deletions,
    );
    for absent in &plan.absent {
        println!("already absent {absent}");
    }
    for refusal in &plan.refusals {
        println!("refused: {refusal}");
    }
    if !plan.refusals.is_empty() {
        println!("destroy would change nothing while anything is refused");
    }
}

fn print_verify(report: &VerifyReport) {
    for check in &report.checks {
        let mark = if check.passed { "ok  " } else { "FAIL" };
        println!("{mark} {} ({})", check.name, check.detail);
    }
    if report.passed() {
        println!(
            "least privilege verified: {} checks passed",
            report.checks.len()
        );
    }
}

fn print_destroy(report: &DestroyReport) {
    for deleted in &report.deleted {
        println!("deleted {deleted}");
    }
    for absent in &report.absent {
        println!("already absent {absent}");
    }
    for failure in &report.failures {
        println!("FAILED {failure}");
    }
}
