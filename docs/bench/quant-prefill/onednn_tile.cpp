// Measurement tool for docs/bench/quant-prefill/onednn-tile.txt (not part of the build): one
// prefill tile GEMM through oneDNN with the weights reordered into its chosen layout or plain.
#include <oneapi/dnnl/dnnl.hpp>
#include <chrono>
#include <cstdio>
#include <vector>
#include <ctime>
using namespace dnnl;
using dt = memory::data_type; using tag = memory::format_tag;
double cpu() { timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + 1e-9*t.tv_nsec; }
int main(int argc, char** argv) {
  engine eng(engine::kind::cpu, 0); stream s(eng);
  const int M = atoi(argv[3]), K = atoi(argv[1]), R = atoi(argv[2]), OUT = R * 2;
  std::vector<uint16_t> x(M*K, 0x3f80), w(R*K, 0x3f80), wb(R*K);
  std::vector<float> y(M*OUT), yt(R*M);
  auto run = [&](const char* name, auto fn) {
    fn(); double c0 = cpu(); auto t0 = std::chrono::steady_clock::now();
    const int it = 10; for (int i = 0; i < it; ++i) fn();
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("%-28s cpu %.2f ms/call  wall %.2f ms/call\n", name, (cpu()-c0)/it*1e3, wall/it*1e3);
  };
  memory::desc src({M, K}, dt::bf16, tag::ab), dst({M, R}, dt::f32, memory::dims{OUT, 1});
  // (1) any + reorder
  { memory::desc wany({K, R}, dt::bf16, tag::any), wba({K, R}, dt::bf16, tag::ba);
    matmul::primitive_desc pd(matmul::desc(src, wany, dst), eng); matmul mm(pd);
    printf("any: %s\n", pd.impl_info_str());
    memory ms(src, eng, x.data()), mw(wba, eng, w.data()), mb(pd.weights_desc(), eng, wb.data()), md(dst, eng, y.data());
    reorder ro(mw, mb);
    run("reorder only", [&]{ ro.execute(s, mw, mb); s.wait(); });
    run("matmul(any)", [&]{ mm.execute(s, {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, md}}); s.wait(); });
  }
  // (2) weights ba directly
  { memory::desc wba({K, R}, dt::bf16, tag::ba);
    matmul::primitive_desc pd(matmul::desc(src, wba, dst), eng); matmul mm(pd);
    printf("ba: %s\n", pd.impl_info_str());
    memory ms(src, eng, x.data()), mw(wba, eng, w.data()), md(dst, eng, y.data());
    run("matmul(ba)", [&]{ mm.execute(s, {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}}); s.wait(); });
  }
}
