// The README's short-tour model (dense 128, batch norm, relu, dense 10, Adam), recorded without
// data: prints its variable summary and writes its training graph as Graphviz DOT (the source of
// docs/figures/readme_model.png; render it with scripts/render-graph).
//   build/examples/readme_model_graph [out.dot]   (default examples/out/readme_model.dot)
#include <autodiff/autodiff.h>
#include <layers/layers.h>
#include <optim/adam.h>

#include <filesystem>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "examples/out/readme_model.dot";
  ad::Graph g;
  g.set_seed(1);
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 64}, "x");
  auto labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  auto training = ad::placeholder(g, ad::DType::Bool, {}, "training");
  auto h = ad::layers::dense(x, 128, {.name = "fc1"});
  h = ad::relu(ad::layers::batch_normalization(h, {.momentum = 0.9, .training = training}));
  auto logits = ad::layers::dense(h, 10, {.name = "fc2"});
  auto loss = ad::reduce_mean(ad::nn::sparse_softmax_cross_entropy_with_logits(labels, logits));
  const auto model_variables = ad::global_variables(g);  // before Adam adds its slots
  ad::optim::Adam adam({.learning_rate = 1e-3});
  auto train_op =
      ad::group({adam.minimize(loss), ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))});

  std::cout << ad::summary_table(model_variables) << '\n';
  if (const auto dir = std::filesystem::path(path).parent_path(); !dir.empty()) {
    std::filesystem::create_directories(dir);
  }
  ad::write_graphviz(g, path, {.fetches = {train_op}, .title = "readme_model"});
  std::cout << "wrote " << path << '\n';
}
