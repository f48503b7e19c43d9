// fastkv: command-line front end. Errors in input (files, flags, prompts) print one line
// "error: ..." on stderr and exit with status 1; flag syntax errors exit with CLI11's code.
#include <cstdio>
#include <exception>
#include <new>

#include "commands.h"
#include "common/error.h"

int main(int argc, char** argv) {
  CLI::App app{"fastkv: long-context LLM inference with FastKV (token-selective propagation and "
               "GQA-aware KV compression)",
               "fastkv"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fastkv 0.1.0");
  fastkv::cli::register_inspect(app);
  fastkv::cli::register_tokenize(app);
  fastkv::cli::register_run(app);
  fastkv::cli::register_eval(app);
  fastkv::cli::register_serve(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const fastkv::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
