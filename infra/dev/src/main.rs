//! `cargo run -p postato-dev [-- --backend embedded|aws] [--create-resources]`
//! `cargo run -p postato-dev -- keys create --workspace NAME`

use std::process::ExitCode;

use postato_dev::DevConfig;
use shared::config::EnvVars;

const HELP: &str = "\
postato-dev: Postato for TikTok on one machine

USAGE:
    postato-dev [--backend embedded|aws] [--create-resources]
    postato-dev keys create --workspace NAME

The first form serves the API on POSTATO_HTTP_ADDR (default 127.0.0.1:8080) until Ctrl-C.
The second prints a new API key for workspace NAME (created when new) and nothing else on stdout.
Environment: see the README's configuration table.";

#[tokio::main]
async fn main() -> ExitCode {
    shared::telemetry::init_local();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: &[String]) -> anyhow::Result<()> {
    let config = DevConfig::from_env(EnvVars::from_process())?;
    match args.first().map(String::as_str) {
        Some("--help" | "-h" | "help") => {
            println!("{HELP}");
            Ok(())
        }
        Some("keys") => match args {
            [_, create, flag, name] if create == "create" && flag == "--workspace" => {
                let key = postato_dev::create_key(&config, name).await?;
                println!("{key}");
                Ok(())
            }
            _ => anyhow::bail!("usage: postato-dev keys create --workspace NAME"),
        },
        _ => {
            let config = config.with_flags(args)?;
            let system = postato_dev::start(config).await?;
            print_banner(&system);
            tokio::signal::ctrl_c().await?;
            eprintln!("stopping...");
            system.shutdown().await;
            Ok(())
        }
    }
}

fn print_banner(system: &postato_dev::DevSystem) {
    let url = &system.base_url;
    let key = &system.api_key;
    let account = match &system.account_id {
        Some(id) => id.to_string(),
        None => "none yet: connect one (below)".to_owned(),
    };
    let tiktok: String = system
        .tiktok_settings
        .iter()
        .map(|(name, value)| format!("\n  {name:<22}{value}"))
        .collect();
    println!(
        "\
Postato for TikTok is running at {url}
  data dir              {data}
  events                {events}
  dev API key           {key}
  TikTok account        {account}{tiktok}

Try it:
  export POSTATO={url} KEY={key}
  curl -s -X POST $POSTATO/v1/media -H \"Authorization: Bearer $KEY\" -H 'content-type: application/json' \\
       -d '{{\"kind\":\"video\",\"contentType\":\"video/mp4\",\"sizeBytes\":'$(stat -c%s clip.mp4)',\"fileName\":\"clip.mp4\"}}'
  curl -s -X POST $POSTATO/v1/posts -H \"Authorization: Bearer $KEY\" -H 'content-type: application/json' \\
       -d '{{\"platform\":\"tiktok\",\"accountId\":\"{account}\",\"status\":\"draft\",\"postType\":\"video\",
            \"content\":\"My first post\",\"media\":[{{\"id\":\"med_...\"}}],\"options\":{{\"privacy\":\"private\"}}}}'
  curl -s $POSTATO/v1/posts -H \"Authorization: Bearer $KEY\"
  curl -s -X POST $POSTATO/v1/accounts/tiktok/connect -H \"Authorization: Bearer $KEY\"   # another account: open authorizeUrl
  curl -s $POSTATO/v1/accounts/{account}/creator-info -H \"Authorization: Bearer $KEY\"
Press Ctrl-C to stop.",
        data = system.data_dir.display(),
        events = system.events_file.display(),
    );
}
