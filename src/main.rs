use clap::Parser;
use lookout::config::Cli;
use lookout::startup::Application;

// jemalloc: the live path allocates many short-lived strings and JSON frames per page view;
// measured in docs/PERFORMANCE.md (less CPU per page view than glibc malloc).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Cli::parse().settings();
    lookout::telemetry::init_logging(&settings.log_format);
    let demo = settings.demo;
    let app = Application::build(settings).await?;
    let addr = app.local_addr();
    tracing::info!("listening on http://{addr}");
    if demo {
        let host = if addr.ip().is_unspecified() {
            format!("localhost:{}", addr.port())
        } else {
            addr.to_string()
        };
        println!("Lookout demo is running.");
        println!(
            "  Dashboard:  http://{host}/   (log in as {} / {})",
            lookout::demo::DEMO_EMAIL,
            lookout::demo::DEMO_PASSWORD
        );
        println!("  Demo shop:  http://{host}/demo/");
    }
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: closing sockets, then flushing the writer");
        shutdown.cancel();
    });
    app.run_until_stopped().await
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
