// fastkv: command-line front end. Every error in input (files, flags and their values,
// prompts) prints one line "error: ..." on stderr and exits with status 1, as llama.cpp's tools
// do; --help and --version exit 0.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <new>
#include <string>

#include "commands.h"
#include "common/error.h"

int main(int argc, char** argv) {
  // How OpenMP workers wait between parallel regions. Decode runs a few hundred short regions
  // per token: workers that fall asleep after each (OMP_WAIT_POLICY=PASSIVE) must be woken by
  // the kernel for the next, which halved SmolLM2's decode (65-71 vs 126-145 tokens/s on the
  // idle machine, docs/benchmarks.md "Waiting between parallel regions"); workers that spin
  // without end (ACTIVE) collapse as soon as other processes want the cores (1.0 vs 17.3
  // tokens/s at a load average of 2). A short spin (GOMP_SPINCOUNT=10000, about 0.1 ms) keeps
  // them warm from one region to the next during a generation and lets them sleep between
  // requests: measured as fast as ACTIVE when idle, and no slower than PASSIVE beside two busy
  // processes (1000 spins were enough before the interleaved kernels made the regions shorter:
  // SmolLM2 decode idle 276-316 tok/s with 1000 against 315-346 with 10000 and 320-329
  // ACTIVE; beside two busy processes 84-86 against 101-105; docs/benchmarks.md "Waiting
  // between parallel regions"). libgomp reads these when it is loaded, before main, so set the
  // default and start again; a user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is left as it is.
  if (std::getenv("OMP_WAIT_POLICY") == nullptr && std::getenv("GOMP_SPINCOUNT") == nullptr) {
    setenv("GOMP_SPINCOUNT", "10000", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: then carry on as we are
  }
  // Keep freed memory in the process for the next request instead of handing it back to the
  // kernel and faulting it in again (zeroed) on the next prefill: glibc trims the top of the
  // heap once more than M_TRIM_THRESHOLD is free there, and serves blocks above the (dynamic)
  // mmap threshold by mmap/munmap. Each `full` prefill of 1,024 tokens on SmolLM2 refaulted
  // 4,048 pages (16 MiB: its KV cache and activations) that way (docs/benchmarks.md, "Speed
  // within one process"). Blocks up to 32 MiB (glibc's largest mmap threshold) now come from
  // the heap, and the heap is never trimmed: the process keeps its largest request's memory.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
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
  fastkv::cli::register_synth(app);
  fastkv::cli::register_bench(app);
  fastkv::cli::register_calibrate(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 exits with its own codes (104, 114, ...) and a second line; users and scripts of
    // llama.cpp-style tools expect status 1 and one line.
    std::string msg = e.what();
    for (char& ch : msg) {
      if (ch == '\n') ch = ' ';
    }
    std::fprintf(stderr, "error: %s (see --help)\n", msg.c_str());
    return 1;
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
