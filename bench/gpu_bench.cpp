// Training throughput of the GPU workloads (bench/workloads.h: the MLP, the Keras mnist_convnet and a
// ResNet-style CNN on 32x32x3) through the engine's C++ API, so that it runs where R does not (the GPU
// machines have a C++ toolchain and Python only). bench/torch_gpu.py measures the same models in
// PyTorch; bench/gpu.sh runs both and prints them side by side.
//
// What runs: synthetic data resident on the device (U[0,1) inputs, int32 labels in [0, 10),
// `--data-batches` distinct batches' worth), Trainer::run_epoch over shuffled index batches (the path
// of fit(): gather on the device, forward, loss, backward, fused Adam lr 1e-3 eps 1e-7, TF32 off).
// What is measured, as ../shared/bench/train_torch.py does: train samples/s over chunks of 10 batches
// after 5 warm-up batches; median (torch's s[n // 2]), min and max over `--chunks` chunks. The clock
// is read after a device synchronisation (a device-to-host copy of the model's last weight, which waits
// for the stream), at the end of the warm-up and of each chunk; the engine already synchronises
// once per step when it reads the loss (Keras logs it every batch).
//
// Usage: bench_gpu_bench [--device auto|cpu|cuda] [--models mlp,convnet,resnet]
//                        [--batches mlp=128,256,1024;convnet=128,256,1024;resnet=256]
//                        [--chunks 10] [--warmup 5] [--chunk 10] [--data-batches 8] [--threads N]
//                        [--csv FILE] [--json FILE]
// --device auto (the default) measures on the GPU when one is usable and otherwise prints
// "no GPU: GPU workloads skipped" and exits 0 (make bench runs every bench binary); --device cpu
// measures the CPU (slow for the ResNet: pass fewer --chunks).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <tuple>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "workloads.h"

#if RKERAS_HAVE_CUDA
#include "backend/cuda/cuda_api.h"
#endif

namespace {

using rk::Device;
using rk::Tensor;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

struct Options {
  std::string device = "auto";
  std::vector<std::string> models = {"mlp", "convnet", "resnet"};
  std::map<std::string, std::vector<int64_t>> batches = {
      {"mlp", {128, 256, 1024}}, {"convnet", {128, 256, 1024}}, {"resnet", {256}}};
  int chunks = 10, warmup = 5, chunk = 10, data_batches = 8, threads = 0;
  std::string csv, json;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_gpu_bench: %s\nusage: bench_gpu_bench [--device auto|cpu|cuda] [--models mlp,convnet,resnet]\n"
               "  [--batches 'mlp=128,1024;resnet=256'] [--chunks 10] [--warmup 5] [--chunk 10] [--data-batches 8]\n"
               "  [--threads N] [--csv FILE] [--json FILE]\n",
               why.c_str());
  std::exit(2);
}

int positive(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  if (end == v.c_str() || *end != '\0' || n < 1) usage(flag + " needs a positive integer, got '" + v + "'");
  return static_cast<int>(n);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") usage("measures training samples/s of the GPU workloads");
    if (i + 1 >= argc) usage(a + " needs a value");
    const std::string v = argv[++i];
    if (a == "--device") {
      if (v != "auto" && v != "cpu" && v != "cuda") usage("--device must be auto, cpu or cuda, got '" + v + "'");
      o.device = v;
    } else if (a == "--models") {
      o.models = split(v, ',');
      for (const auto& m : o.models)
        if (!o.batches.count(m)) usage("unknown model '" + m + "' (mlp, convnet, resnet)");
    } else if (a == "--batches") {
      for (const auto& spec : split(v, ';')) {
        const auto eq = spec.find('=');
        if (eq == std::string::npos || !o.batches.count(spec.substr(0, eq)))
          usage("--batches wants model=b1,b2;model=b3 (models mlp, convnet, resnet), got '" + spec + "'");
        std::vector<int64_t> bs;
        for (const auto& b : split(spec.substr(eq + 1), ',')) bs.push_back(positive("--batches", b));
        o.batches[spec.substr(0, eq)] = bs;
      }
    } else if (a == "--chunks") o.chunks = positive(a, v);
    else if (a == "--warmup") o.warmup = positive(a, v);
    else if (a == "--chunk") o.chunk = positive(a, v);
    else if (a == "--data-batches") o.data_batches = positive(a, v);
    else if (a == "--threads") o.threads = positive(a, v);
    else if (a == "--csv") o.csv = v;
    else if (a == "--json") o.json = v;
    else usage("unknown option " + a);
  }
  return o;
}

// Waits for every queued kernel of the device: a device-to-host copy of a (small) weight is
// stream-ordered after the step's optimizer update and returns only when it is done.
void synchronize(const rk::nn::Graph& g) {
  rk::autograd::NoGradGuard ng;
  (void)rk::ops::to_device(g.weights.back(), rk::cpu_device());
}

struct Result {
  std::string model;
  int64_t batch = 0, params = 0, trainable = 0;
  int chunks = 0;
  double med = 0, min = 0, max = 0, loss = 0;
};

Result run(const std::string& model, int64_t batch, Device dev, const Options& o) {
  using namespace rk;
  auto g = bench::build_model(model, dev, 1);
  nn::Trainer tr = bench::make_trainer(g);
  const int64_t n = batch * o.data_batches;
  bench::Data data = bench::synthetic_data(n, bench::input_shape(model), dev, 2);
  // Batches of a fresh permutation each pass over the data, as fit(shuffle = TRUE) makes them.
  const int total = o.warmup + o.chunks * o.chunk;
  std::vector<std::vector<int32_t>> batches;
  std::mt19937 rng(3);
  std::vector<int32_t> perm(static_cast<size_t>(n));
  while (static_cast<int>(batches.size()) < total) {
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int64_t s = 0; s + batch <= n && static_cast<int>(batches.size()) < total; s += batch)
      batches.emplace_back(perm.begin() + s, perm.begin() + s + batch);
  }
  std::vector<double> stamps;
  Generator gen(4);
  tr.run_epoch({data.x}, {data.y}, Tensor(), batches, gen, [&](int64_t done, const std::vector<nn::LogEntry>&) {
    if (done >= o.warmup && (done - o.warmup) % o.chunk == 0) {
      synchronize(*g);
      stamps.push_back(now_s());
    }
    return true;
  });
  std::vector<double> sps;
  for (size_t i = 1; i < stamps.size(); ++i)
    sps.push_back(static_cast<double>(o.chunk * batch) / (stamps[i] - stamps[i - 1]));
  std::sort(sps.begin(), sps.end());
  Result r;
  r.model = model;
  r.batch = batch;
  std::tie(r.params, r.trainable) = bench::count_params(*g);
  r.chunks = static_cast<int>(sps.size());
  r.med = sps[sps.size() / 2];
  r.min = sps.front();
  r.max = sps.back();
  r.loss = tr.logs()[0].value;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  Device dev = rk::cpu_device();
  std::string device_name = "cpu", engine_info = "cpu";
  bool use_cuda = o.device == "cuda";
#if RKERAS_HAVE_CUDA
  const rk::cuda::Availability& av = rk::cuda::availability();
  if (o.device == "auto") use_cuda = av.device_count > 0;
  if (o.device == "auto" && !use_cuda) {
    std::printf("gpu_bench: no GPU: GPU workloads skipped (%s)\n", av.reason.c_str());
    return 0;
  }
  if (use_cuda) {
    if (av.device_count == 0) {
      std::fprintf(stderr, "gpu_bench: --device cuda but no usable GPU: %s\n", av.reason.c_str());
      return 1;
    }
    rk::cuda::set_allow_tf32(false);
    const rk::cuda::DeviceInfo info = rk::cuda::device_info(0);
    dev = Device{rk::DeviceType::CUDA, 0};
    device_name = info.name;
    engine_info = "CUDA runtime " + std::to_string(rk::cuda::runtime_version()) + ", cuDNN " +
                  std::to_string(rk::cuda::cudnn_version());
    std::printf("gpu_bench: device cuda:0 %s (compute capability %d.%d, %d SMs, %.1f GiB), CUDA runtime %d, "
                "driver %d, cuDNN %d, TF32 off\n",
                info.name.c_str(), info.cc_major, info.cc_minor, info.multiprocessors,
                static_cast<double>(info.total_memory) / (1 << 30), rk::cuda::runtime_version(),
                rk::cuda::driver_version(), rk::cuda::cudnn_version());
  }
#else
  if (o.device == "auto") {
    std::printf("gpu_bench: no GPU: GPU workloads skipped (this build has no CUDA backend: configure with "
                "-DRKERAS_CUDA=ON)\n");
    return 0;
  }
  if (use_cuda) {
    std::fprintf(stderr, "gpu_bench: --device cuda but this build has no CUDA backend (-DRKERAS_CUDA=ON)\n");
    return 1;
  }
#endif
  if (!use_cuda) {
    if (o.threads > 0) omp_set_num_threads(o.threads);
    engine_info = "cpu, " + std::to_string(omp_get_max_threads()) + " threads";
    std::printf("gpu_bench: device cpu, %d threads\n", omp_get_max_threads());
  }
  std::printf("train samples/s over chunks of %d batches after %d warm-up batches (Adam, synthetic data on the device)\n",
              o.chunk, o.warmup);
  std::printf("%-8s %6s %9s %12s %12s %12s %8s %8s\n", "model", "batch", "params", "median", "min", "max", "ms/step",
              "loss");
  std::vector<Result> results;
  for (const auto& m : o.models)
    for (int64_t b : o.batches.at(m)) {
      Result r = run(m, b, dev, o);
      std::printf("%-8s %6lld %9lld %12.0f %12.0f %12.0f %8.3f %8.4f\n", r.model.c_str(), static_cast<long long>(r.batch),
                  static_cast<long long>(r.params), r.med, r.min, r.max, 1e3 * static_cast<double>(r.batch) / r.med,
                  r.loss);
      std::fflush(stdout);
      results.push_back(r);
    }
  const std::string devstr = use_cuda ? "cuda" : "cpu";
  if (!o.csv.empty()) {
    std::ofstream f(o.csv);
    f << "framework,device,device_name,model,batch,params,trainable_params,chunks,train_sps_median,train_sps_min,"
         "train_sps_max,loss_mean\n";
    for (const auto& r : results)
      f << "rkeras," << devstr << ",\"" << device_name << "\"," << r.model << ',' << r.batch << ',' << r.params << ','
        << r.trainable << ',' << r.chunks << ',' << r.med << ',' << r.min << ',' << r.max << ',' << r.loss << '\n';
  }
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << "[\n";
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      f << "  {\"framework\": \"rkeras\", \"device\": \"" << devstr << "\", \"device_name\": \"" << device_name
        << "\", \"model\": \"" << r.model << "\", \"batch\": " << r.batch << ", \"params\": " << r.params
        << ", \"trainable_params\": " << r.trainable << ", \"chunks\": " << r.chunks
        << ", \"train_sps_median\": " << r.med << ", \"train_sps_min\": " << r.min << ", \"train_sps_max\": " << r.max
        << ", \"loss_mean\": " << r.loss << ", \"info\": \"" << engine_info << "\"}" << (i + 1 < results.size() ? ",\n" : "\n");
    }
    f << "]\n";
  }
  return 0;
}
