// matmul with NumPy semantics. Operands are viewed as [batch..., rows, cols] without copies;
// a batch-less operand is passed with stride 0, and only partially broadcast batch dims are
// materialised. The backward uses the GEMM transpose flags instead of explicit transposes.
#include <algorithm>
#include <string>

#include "ops/ops.h"

namespace rk::ops {

namespace {

// How one operand enters a batched GEMM.
struct Operand {
  Tensor t;            // contiguous data: [batch, r, c] or, with stride 0, a single [r, c]
  int64_t stride = 0;  // elements between batch items
  bool materialised = false;
};

// Shape of batch dims `batch` padded on the left with 1s to `rank` dims.
std::vector<int64_t> pad_batch(const std::vector<int64_t>& batch, size_t rank) {
  std::vector<int64_t> out(rank - batch.size(), 1);
  out.insert(out.end(), batch.begin(), batch.end());
  return out;
}

int64_t product(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t e : d) n *= e;
  return n;
}

Operand prepare(const Tensor& x, const std::vector<int64_t>& xbatch, const std::vector<int64_t>& bshape, int64_t r,
                int64_t c) {
  Operand op;
  int64_t nb = product(bshape);
  if (product(xbatch) == 1 || nb == 1) {
    op.t = x;
    op.stride = nb == 1 ? r * c : 0;
  } else if (pad_batch(xbatch, bshape.size()) == bshape) {
    op.t = x;
    op.stride = r * c;
  } else {
    std::vector<int64_t> full = bshape;
    full.push_back(r);
    full.push_back(c);
    std::vector<int64_t> src = pad_batch(xbatch, bshape.size());
    src.push_back(r);
    src.push_back(c);
    op.t = Tensor::empty(Shape(full), x.dtype(), x.device());
    backend_of(x).broadcast_to(x.view_as_shape(Shape(src)), op.t);
    op.stride = r * c;
    op.materialised = true;
  }
  return op;
}

// Sums a gradient computed over the full batch `bshape` down to an operand with batch dims `xbatch`.
Tensor reduce_batch(const Tensor& gfull, const std::vector<int64_t>& xbatch, const std::vector<int64_t>& bshape,
                    const Shape& xshape) {
  std::vector<int64_t> padded = pad_batch(xbatch, bshape.size());
  std::vector<int> axes;
  for (size_t i = 0; i < bshape.size(); ++i)
    if (padded[i] == 1 && bshape[i] != 1) axes.push_back(static_cast<int>(i));
  Tensor g = axes.empty() ? gfull : sum(gfull, axes, true);
  return g.view_as_shape(xshape);
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  if (a_in.rank() == 0 || b_in.rank() == 0)
    throw ShapeError("matmul: shapes " + a_in.shape().str() + " and " + b_in.shape().str() +
                     " are incompatible: operands must have at least one dimension");
  DType dt = promote_types(a_in.dtype(), b_in.dtype());
  if (!is_floating(dt)) throw_dtype_error("matmul", dt, "float32 or float64");
  Tensor a = cast(a_in, dt), b = cast(b_in, dt);

  // 1-D promotion: a vector on the left is a row, on the right a column; both vanish from the result.
  std::vector<int64_t> ad = a.shape().dims(), bd = b.shape().dims();
  bool a_vec = ad.size() == 1, b_vec = bd.size() == 1;
  if (a_vec) ad.insert(ad.begin(), 1);
  if (b_vec) bd.push_back(1);
  int64_t m = ad[ad.size() - 2], k = ad.back(), kb = bd[bd.size() - 2], n = bd.back();
  if (k != kb)
    throw ShapeError("matmul: shapes " + a_in.shape().str() + " and " + b_in.shape().str() +
                     " are incompatible: inner dimensions " + std::to_string(k) + " and " + std::to_string(kb) +
                     " differ");
  std::vector<int64_t> abatch(ad.begin(), ad.end() - 2), bbatch(bd.begin(), bd.end() - 2);
  size_t br = std::max(abatch.size(), bbatch.size());
  std::vector<int64_t> pa = pad_batch(abatch, br), pb = pad_batch(bbatch, br), bshape(br);
  for (size_t i = 0; i < br; ++i) {
    if (pa[i] != pb[i] && pa[i] != 1 && pb[i] != 1)
      throw ShapeError("matmul: shapes " + a_in.shape().str() + " and " + b_in.shape().str() +
                       " are incompatible: batch dimensions " + Shape(abatch).str() + " and " + Shape(bbatch).str() +
                       " cannot be broadcast");
    bshape[i] = pa[i] == 1 ? pb[i] : pa[i];
  }
  int64_t batch = product(bshape);

  std::vector<int64_t> od = bshape;
  if (!a_vec) od.push_back(m);
  if (!b_vec) od.push_back(n);
  Tensor out = Tensor::empty(Shape(od), dt, a.device());
  if (out.numel() == 0) {
    if (autograd::needs_grad({a, b})) {
      Tensor ad0 = a.detach(), bd0 = b.detach();
      autograd::record("matmul", out, {a, b}, [ad0, bd0](const Tensor&) {
        return std::vector<Tensor>{zeros_like(ad0), zeros_like(bd0)};
      });
    }
    return out;
  }

  Operand A = prepare(a, abatch, bshape, m, k), B = prepare(b, bbatch, bshape, k, n);
  Backend& be = backend_of(a);
  if (B.stride == 0 && batch > 1 && A.stride != 0) {
    // A stack of matrices times one matrix is one tall product: [batch*m, k] x [k, n].
    be.gemm(false, false, 1, batch * m, n, k, 1.0, A.t, 0, B.t, 0, 0.0, out, 0);
  } else {
    be.gemm(false, false, batch, m, n, k, 1.0, A.t, A.stride, B.t, B.stride, 0.0, out, m * n);
  }

  if (autograd::needs_grad({a, b})) {
    bool need_a = a.requires_grad(), need_b = b.requires_grad();
    Tensor at = A.t.detach(), bt = B.t.detach();
    int64_t sa = A.stride, sb = B.stride;
    Shape ashape = a.shape(), bshape_in = b.shape();
    autograd::record("matmul", out, {a, b}, [=](const Tensor& g) {
      Backend& bk = backend_of(g);
      std::vector<Tensor> grads(2);
      bool tall = sb == 0 && batch > 1;  // b shared by every batch item, as in the forward
      // ga = g @ b^T ([m,n] x [n,k]) and gb = a^T @ g ([k,m] x [m,n]) per batch item.
      if (need_a) {
        if (tall) {
          Tensor ga = Tensor::empty(ashape, dt, g.device());
          bk.gemm(false, true, 1, batch * m, k, n, 1.0, g, 0, bt, 0, 0.0, ga, 0);
          grads[0] = ga;
        } else {
          std::vector<int64_t> gd = bshape;
          gd.push_back(m);
          gd.push_back(k);
          Tensor ga = Tensor::empty(Shape(gd), dt, g.device());
          bk.gemm(false, true, batch, m, k, n, 1.0, g, m * n, bt, sb, 0.0, ga, m * k);
          grads[0] = reduce_batch(ga, abatch, bshape, ashape);
        }
      }
      if (need_b) {
        if (tall) {
          // The stacked rows of a and g make the batch sum a single product: [k, batch*m] x [batch*m, n].
          Tensor gb = Tensor::empty(bshape_in, dt, g.device());
          bk.gemm(true, false, 1, k, n, batch * m, 1.0, at, 0, g, 0, 0.0, gb, 0);
          grads[1] = gb;
        } else {
          std::vector<int64_t> gd = bshape;
          gd.push_back(k);
          gd.push_back(n);
          Tensor gb = Tensor::empty(Shape(gd), dt, g.device());
          bk.gemm(true, false, batch, k, n, m, 1.0, at, sa, g, m * n, 0.0, gb, k * n);
          grads[1] = reduce_batch(gb, bbatch, bshape, bshape_in);
        }
      }
      return grads;
    });
  }
  return out;
}

}  // namespace rk::ops
