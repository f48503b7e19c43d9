// The server's engine: one thread owns the model and every request's Session, and runs
// continuous batching (docs/server.md, "Batched decoding"):
//   - between decode steps it takes the next admitted request (Server::Impl::submit) and runs
//     its prefill; the prefill calls back after every layer, and from there the engine runs a
//     decode step of the requests already generating whenever one is due (at most one step per
//     layer, at least a step's time apart), so their streams keep flowing during a long prefill;
//   - one decode step appends one token to every running request at once
//     (Session::decode_batch: the linear layers run once on B rows, attention per request on
//     its own, differently sized, compressed cache); each request's sampling, stop strings,
//     end of generation, max_tokens and logprobs are its own Generation's (runtime/
//     generation.h, the same code as Session::generate);
//   - a request whose client went away (the connection closed, a write failed) or a stopping
//     server ends at the next step, or between two layers of its prefill.
// The connection threads only wait on their Job's events (pieces, then done or error).
#include <algorithm>
#include <chrono>
#include <exception>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common/error.h"
#include "kernels/cancel.h"
#include "kernels/parallel.h"
#include "runtime/generation.h"
#include "server/server_impl.h"

namespace fastkv::server {

void Job::post(JobEvent e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

JobEvent Job::next() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !events_.empty(); });
  JobEvent e = std::move(events_.front());
  events_.pop_front();
  return e;
}

namespace {

using Clock = std::chrono::steady_clock;

// Thrown by the prefill's per-layer hook when the client has gone: it unwinds the prefill
// between two layers (the Session and its cache are freed on the way out).
struct PrefillCancelled {};

// One request in the engine: its Session (cache + policy) and its Generation.
struct Sequence {
  std::shared_ptr<Job> job;
  std::unique_ptr<Session> session;
  std::unique_ptr<Generation> gen;
  // Log-probabilities of tokens whose text has not been posted yet (streamed requests).
  std::vector<TokenLogprob> pending;
};

class Engine {
 public:
  explicit Engine(Server::Impl& s) : s_(s) {}

  // Until the server stops: admit, prefill, step.
  void run() {
    for (;;) {
      std::shared_ptr<Job> next;
      {
        std::unique_lock<std::mutex> lock(s_.engine_mu);
        s_.engine_cv.wait(lock, [&] {
          return s_.engine_exit || !s_.incoming.empty() || !running_.empty();
        });
        if (s_.engine_exit) break;
        if (!s_.incoming.empty()) {
          next = std::move(s_.incoming.front());
          s_.incoming.pop_front();
        }
      }
      if (next) start(std::move(next));
      if (!running_.empty()) step();
    }
    // Stopping: every request ends as cancelled.
    for (auto& q : running_) end(*q, /*cancelled=*/true);
    running_.clear();
    std::deque<std::shared_ptr<Job>> left;
    {
      std::lock_guard<std::mutex> lock(s_.engine_mu);
      left.swap(s_.incoming);
    }
    for (auto& job : left) {
      JobEvent e;
      e.kind = JobEvent::Kind::kDone;
      e.cancelled = true;
      e.result.n_prompt = static_cast<int>(job->prompt.size());
      job->post(std::move(e));
    }
  }

 private:
  bool gone(const Job& job) const {
    return s_.stopping || job.abandoned.load() || job.watch.closed();
  }

  // A prefill abandoned because its client went (between layers or inside one): the Session
  // and its partial cache go, the request ends as cancelled.
  void cancelled_prefill(Sequence& seq) {
    GenerationResult r;
    r.n_prompt = static_cast<int>(seq.job->prompt.size());
    seq.gen.reset();
    seq.session.reset();
    done(seq, std::move(r), /*cancelled=*/true);
  }

  // Prefills a new request (running decode steps of the others from its per-layer hook); it
  // joins the running ones unless it already ended.
  void start(std::shared_ptr<Job> job) {
    auto q = std::make_unique<Sequence>();
    q->job = std::move(job);
    Sequence& seq = *q;
    Job& j = *seq.job;
    GenerationParams gen = j.req.gen;
    gen.on_prefill_layer = [this, &j](const PrefillProgress&) {
      if (gone(j)) throw PrefillCancelled{};
      if (!running_.empty() && Clock::now() - last_step_end_ >= last_step_s_) step();
    };
    if (j.req.stream && j.req.logprobs) {
      gen.on_logprobs = [&seq](const TokenLogprob& t) { seq.pending.push_back(t); };
    }
    Generation::TextFn on_text = [this, &seq](const std::string& piece) {
      if (gone(*seq.job)) return false;
      if (seq.job->req.stream) {
        JobEvent e;
        e.text = piece;
        e.logprobs = std::move(seq.pending);
        seq.pending.clear();
        seq.job->post(std::move(e));
      }
      return true;
    };
    try {
      if (gone(j)) throw PrefillCancelled{};
      seq.session = std::make_unique<Session>(*s_.model, std::move(j.policy));
      seq.gen = std::make_unique<Generation>(*seq.session, j.prompt, std::move(gen),
                                             std::move(on_text));
      // Inside a layer too: the attention tiles and the token blocks poll the same test
      // (kernels/cancel.h), so a long prompt's slot frees within a tile's time, not a layer's.
      // The decode steps run from the per-layer hook never poll it.
      const kernels::CancelCheck client_gone = [this, &j] { return gone(j); };
      kernels::ScopedCancelCheck scope(&client_gone);
      seq.gen->prefill();
    } catch (const PrefillCancelled&) {
      cancelled_prefill(seq);
      return;
    } catch (const kernels::Cancelled&) {
      cancelled_prefill(seq);
      return;
    } catch (const std::exception& e) {
      fail_job(seq, e);
      return;
    }
    j.lease->set_kv_bytes(seq.session->cache().bytes());
    if (seq.gen->done()) {
      end(seq, seq.gen->cancelled());
      return;
    }
    running_.push_back(std::move(q));
  }

  // One decode step of every running request; those that end leave.
  void step() {
    // Requests whose client went away end before the step.
    for (auto& q : running_) {
      if (gone(*q->job)) end(*q, /*cancelled=*/true);
    }
    drop_ended();
    if (running_.empty()) return;
    const auto t0 = Clock::now();
    // Every running request gets one token: one decode_batch call of up to max_batch rows at
    // a time (one call unless --max-batch is below the running count).
    const size_t batch = s_.opts.max_batch > 0 ? static_cast<size_t>(s_.opts.max_batch)
                                               : running_.size();
    for (size_t first = 0; first < running_.size(); first += batch) {
      const size_t last = std::min(running_.size(), first + batch);
      std::vector<Session*> sessions;  // [rows]
      std::vector<int32_t> tokens;     // [rows]
      for (size_t i = first; i < last; ++i) {
        sessions.push_back(running_[i]->session.get());
        tokens.push_back(running_[i]->gen->pending_token());
      }
      try {
        Session::decode_batch(sessions, tokens);
      } catch (const std::exception& e) {
        for (size_t i = first; i < last; ++i) fail_job(*running_[i], e);
        continue;
      }
      s_.metrics.count_decode_step(static_cast<int>(sessions.size()));
      for (size_t i = first; i < last; ++i) {
        Sequence& q = *running_[i];
        try {
          q.gen->accept_decoded();
        } catch (const std::exception& e) {
          fail_job(q, e);
          continue;
        }
        q.job->lease->set_kv_bytes(q.session->cache().bytes());
        if (q.gen->done()) end(q, q.gen->cancelled());
      }
    }
    drop_ended();
    last_step_end_ = Clock::now();
    last_step_s_ = last_step_end_ - t0;
  }

  void drop_ended() {
    running_.erase(std::remove_if(running_.begin(), running_.end(),
                                  [](const std::unique_ptr<Sequence>& q) { return !q->job; }),
                   running_.end());
  }

  // Ends a request that has its Generation. One ended by the engine (client gone, server
  // stopping) sends nothing more: its on_text refuses the text held back.
  void end(Sequence& q, bool cancelled) {
    if (!q.job) return;
    GenerationResult r = q.gen->finish();
    done(q, std::move(r), cancelled);
  }

  // Frees the request's cache, counts it and posts its result; q.job is cleared.
  void done(Sequence& q, GenerationResult r, bool cancelled) {
    q.gen.reset();
    q.session.reset();
    q.job->lease->set_kv_bytes(0);
    trim();
    s_.metrics.record_generation(r.n_prompt, static_cast<int64_t>(r.tokens.size()), r.ttft_s,
                                 r.decode_s, r.n_decode_steps, cancelled);
    JobEvent e;
    e.kind = JobEvent::Kind::kDone;
    e.result = std::move(r);
    e.cancelled = cancelled;
    e.logprobs = std::move(q.pending);
    q.job->post(std::move(e));
    q.job.reset();
  }

  void fail_job(Sequence& q, const std::exception& ex) {
    if (!q.job) return;
    q.gen.reset();
    q.session.reset();
    q.job->lease->set_kv_bytes(0);
    trim();
    JobEvent e;
    e.kind = JobEvent::Kind::kError;
    e.text = ex.what();
    e.bad_request = dynamic_cast<const Error*>(&ex) != nullptr;
    q.job->post(std::move(e));
    q.job.reset();
  }

  static void trim() {
#if defined(__GLIBC__)
    // The prefill's buffers (activations, attention tiles: tens of MB for long prompts) and
    // the freed cache went back to malloc, which keeps them; hand the free pages back so that
    // the server's RSS returns to its idle size between requests (a few ms per call).
    malloc_trim(0);
#endif
  }

  Server::Impl& s_;
  std::vector<std::unique_ptr<Sequence>> running_;  // prefilled, generating; in arrival order
  Clock::time_point last_step_end_{};
  Clock::duration last_step_s_{};  // how long the last decode step took
};

}  // namespace

void Server::Impl::start_engine() {
  engine_thread = std::thread([this] { engine_loop(); });
}

void Server::Impl::engine_loop() {
  kernels::set_threads(threads);
  Engine(*this).run();
}

void Server::Impl::stop_engine() {
  {
    std::lock_guard<std::mutex> lock(engine_mu);
    engine_exit = true;
  }
  engine_cv.notify_all();
  if (engine_thread.joinable()) engine_thread.join();
}

void Server::Impl::submit(std::shared_ptr<Job> job) {
  {
    std::lock_guard<std::mutex> lock(engine_mu);
    if (!engine_exit) {
      incoming.push_back(std::move(job));
      job = nullptr;
    }
  }
  if (job) {  // the engine has stopped: the request ends as cancelled, unanswered
    JobEvent e;
    e.kind = JobEvent::Kind::kDone;
    e.cancelled = true;
    e.result.n_prompt = static_cast<int>(job->prompt.size());
    job->post(std::move(e));
    return;
  }
  engine_cv.notify_all();
}

}  // namespace fastkv::server
