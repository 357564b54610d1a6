// Bindings of the fused multi-tensor optimizer steps.
#include <string>

#include "bindings.h"
#include "kernels.h"

namespace py = pybind11;

namespace pydl::cuda::bind {
namespace {

using u = std::uintptr_t;

MultiTensor table(u t, int64_t tensors, int64_t lists, int64_t chunks) {
  return MultiTensor{ptr<const int64_t>(t), tensors, lists, chunks};
}

#define PYDL_TABLE_ARGS py::arg("table"), py::arg("tensors"), py::arg("lists"), py::arg("chunks")

template <class T>
void bind_dtype(py::module_& m, const std::string& sfx) {
  m.def(("sgd_step_" + sfx).c_str(),
        [](u t, int64_t n, int64_t l, int64_t c, double lr, double momentum, double dampening,
           double wd, bool nesterov, bool maximize, bool first_step, u stream) {
          py::gil_scoped_release release;
          sgd_step_cuda<T>(table(t, n, l, c), lr, momentum, dampening, wd, nesterov, maximize,
                           first_step, stream);
        },
        PYDL_TABLE_ARGS, py::arg("lr"), py::arg("momentum"), py::arg("dampening"),
        py::arg("weight_decay"), py::arg("nesterov"), py::arg("maximize"), py::arg("first_step"),
        py::arg("stream"));
  m.def(("adam_step_" + sfx).c_str(),
        [](u t, int64_t n, int64_t l, int64_t c, double lr, double b1, double b2, double eps,
           double wd, int64_t step, bool decoupled, bool amsgrad, bool maximize, u stream) {
          py::gil_scoped_release release;
          adam_step_cuda<T>(table(t, n, l, c), lr, b1, b2, eps, wd, step, decoupled, amsgrad,
                            maximize, stream);
        },
        PYDL_TABLE_ARGS, py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("step"), py::arg("decoupled_weight_decay"),
        py::arg("amsgrad"), py::arg("maximize"), py::arg("stream"));
  m.def(("adagrad_step_" + sfx).c_str(),
        [](u t, int64_t n, int64_t l, int64_t c, double lr, double lr_decay, double wd,
           double eps, int64_t step, bool maximize, u stream) {
          py::gil_scoped_release release;
          adagrad_step_cuda<T>(table(t, n, l, c), lr, lr_decay, wd, eps, step, maximize, stream);
        },
        PYDL_TABLE_ARGS, py::arg("lr"), py::arg("lr_decay"), py::arg("weight_decay"),
        py::arg("eps"), py::arg("step"), py::arg("maximize"), py::arg("stream"));
  m.def(("rmsprop_step_" + sfx).c_str(),
        [](u t, int64_t n, int64_t l, int64_t c, double lr, double alpha, double eps, double wd,
           double momentum, bool centered, bool maximize, u stream) {
          py::gil_scoped_release release;
          rmsprop_step_cuda<T>(table(t, n, l, c), lr, alpha, eps, wd, momentum, centered,
                               maximize, stream);
        },
        PYDL_TABLE_ARGS, py::arg("lr"), py::arg("alpha"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("momentum"), py::arg("centered"), py::arg("maximize"),
        py::arg("stream"));
  m.def(("sum_squares_" + sfx).c_str(),
        [](u t, int64_t n, int64_t l, int64_t c, u out, u stream) {
          py::gil_scoped_release release;
          sum_squares_cuda<T>(table(t, n, l, c), ptr<double>(out), stream);
        },
        PYDL_TABLE_ARGS, py::arg("out"), py::arg("stream"));
  m.def(("scale_" + sfx).c_str(),
        [](u t, int64_t n, int64_t l, int64_t c, double scale, u stream) {
          py::gil_scoped_release release;
          scale_cuda<T>(table(t, n, l, c), scale, stream);
        },
        PYDL_TABLE_ARGS, py::arg("scale"), py::arg("stream"));
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def("optim_chunk_elements", &optim_chunk_elements,
        "Elements per multi-tensor chunk (for building the chunk_prefix of a tensor table)");
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}

}  // namespace pydl::cuda::bind
