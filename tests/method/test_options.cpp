// The option schema (src/method/options.h): one declaration per method drives the command-line
// flags and help, the text and typed (JSON) parsing, and tells an unknown key from a bad value;
// method lists (src/method/method_list.h) refuse a shared option a listed method cannot use at
// the value given instead of silently running that method at its default.
#include <gtest/gtest.h>

#include "common/error.h"
#include "method/fastkv.h"
#include "method/method_list.h"
#include "method/options.h"
#include "method/method.h"
#include "test_util.h"

namespace fastkv {
namespace {

// The OptionError `f` throws (fails the test when it throws none).
template <typename F>
OptionError option_error(F&& f) {
  try {
    f();
  } catch (const OptionError& e) {
    return e;
  }
  ADD_FAILURE() << "no OptionError";
  return OptionError(OptionError::Kind::kBadValue, "", "", "");
}

TEST(OptionSchema, EveryMethodDeclaresItsOptions) {
  const MethodRegistry& reg = MethodRegistry::instance();
  for (const std::string& name : reg.names()) {
    for (const OptionSpec& s : reg.method(name).options) {
      EXPECT_FALSE(s.key.empty()) << name;
      EXPECT_FALSE(s.help.empty()) << name << "." << s.key;
      EXPECT_EQ(option_key(flag_name(s.key)), s.key);
    }
  }
  EXPECT_TRUE(reg.method("full").options.empty());
  EXPECT_TRUE(has_option(reg.method("fastkv").options, "tsp_rate"));
  EXPECT_FALSE(has_option(reg.method("snapkv").options, "tsp_rate"));
  EXPECT_TRUE(has_option(reg.method("adakv").options, "floor_alpha"));
}

TEST(OptionSchema, UnknownKeyIsNotABadValue) {
  const OptionSchema schema = FastKVConfig::schema();
  OptionError unknown = option_error([&] {
    check_options("fastkv", schema, OptionValues{{"colour", 1.0}});
  });
  EXPECT_EQ(unknown.kind(), OptionError::Kind::kUnknownKey);
  EXPECT_EQ(unknown.key(), "colour");
  EXPECT_STREQ(unknown.what(), "method 'fastkv' does not take colour");

  OptionError range = option_error([&] {
    check_options("fastkv", schema, OptionValues{{"retain_rate", 2.0}});
  });
  EXPECT_EQ(range.kind(), OptionError::Kind::kBadValue);
  EXPECT_EQ(range.key(), "retain_rate");
  EXPECT_STREQ(range.what(), "retain_rate must be in (0, 1], got 2");
  // Each front end words it its own way: the command line names the flag.
  EXPECT_EQ(range.worded(flag_name), "--retain-rate must be in (0, 1], got 2");
  EXPECT_STREQ(range.with_flag_names().what(), "--retain-rate must be in (0, 1], got 2");

  OptionError type = option_error([&] {
    check_options("fastkv", schema, OptionValues{{"window", 2.5}});
  });
  EXPECT_EQ(type.kind(), OptionError::Kind::kBadValue);
  EXPECT_STREQ(type.what(), "window must be an integer, got 2.5");
  EXPECT_STREQ(option_error([&] {
                 check_options("fastkv", schema, OptionValues{{"kernel", int64_t{4}}});
               }).what(),
               "kernel must be an odd number >= 1, got 4");
  EXPECT_STREQ(option_error([&] {
                 check_options("fastkv", schema, OptionValues{{"pool", std::string("min")}});
               }).what(),
               "pool must be max or avg, got 'min'");
  EXPECT_STREQ(option_error([&] {
                 check_options("fastkv", schema, OptionValues{{"pool", 1.0}});
               }).what(),
               "pool must be max or avg, got 1");
  EXPECT_STREQ(option_error([&] {
                 check_options("fastkv", schema, OptionValues{{"tsp_layer", std::string("mid")}});
               }).what(),
               "tsp_layer must be a layer index >= 0 or 'none', got 'mid'");
  EXPECT_STREQ(option_error([&] {
                 check_options("full", {}, OptionValues{{"window", int64_t{8}}});
               }).what(),
               "method 'full' takes no options (got 'window')");
}

TEST(OptionSchema, TypedValuesAreTakenAsTheyAre) {
  const OptionSchema schema = FastKVConfig::schema();
  // JSON numbers: an integer for a number option, an integral double for an integer option.
  OptionSet s = check_options("fastkv", schema,
                              OptionValues{{"retain_rate", 0.1},
                                           {"tsp_rate", int64_t{1}},
                                           {"window", 4.0},
                                           {"tsp_layer", std::string("off")},
                                           {"pool", std::string("avgpool")}});
  EXPECT_EQ(s.values().at("retain_rate"), OptionValue(0.1));
  EXPECT_EQ(s.values().at("tsp_rate"), OptionValue(1.0));
  EXPECT_EQ(s.values().at("window"), OptionValue(int64_t{4}));
  EXPECT_EQ(s.values().at("tsp_layer"), OptionValue(std::string("none")));
  EXPECT_EQ(s.values().at("pool"), OptionValue(std::string("avg")));
  EXPECT_DOUBLE_EQ(s.number("retain_rate", 0), 0.1);
  EXPECT_EQ(s.integer("window", 0), 4);
  EXPECT_EQ(s.integer("kernel", 7), 7);  // absent: the method's default
  // Text (the command line): parsed by the same schema into the same types.
  OptionSet t =
      check_options("fastkv", schema, MethodOptions{{"retain_rate", "0.1"}, {"window", "4"}});
  EXPECT_EQ(t.values().at("retain_rate"), OptionValue(0.1));
  EXPECT_EQ(t.values().at("window"), OptionValue(int64_t{4}));
  EXPECT_STREQ(option_error([&] {
                 check_options("fastkv", schema, MethodOptions{{"retain_rate", "x"}});
               }).what(),
               "retain_rate must be a number, got 'x'");
  // Typed and text creation give the same policy settings.
  auto typed = MethodRegistry::instance().create_typed(
      "fastkv", {{"retain_rate", 0.05}, {"tsp_layer", int64_t{2}}}, 5);
  auto text =
      MethodRegistry::instance().create("fastkv", {{"retain_rate", "0.05"}, {"tsp_layer", "2"}}, 5);
  const auto& a = dynamic_cast<const FastKVMethod&>(*typed).config();
  const auto& b = dynamic_cast<const FastKVMethod&>(*text).config();
  EXPECT_EQ(a.retain_rate, b.retain_rate);
  EXPECT_EQ(a.tsp_layer, 2);
  EXPECT_EQ(b.tsp_layer, 2);
  // Cross-option checks name the option too (typed path: by key; text path: by flag).
  OptionError deep = option_error([] {
    MethodRegistry::instance().create_typed("fastkv", {{"tsp_layer", int64_t{9}}}, 5);
  });
  EXPECT_EQ(deep.key(), "tsp_layer");
  EXPECT_EQ(std::string(deep.what()).rfind("tsp_layer 9 is not below", 0), 0u) << deep.what();
  OptionError deep_cli = option_error([] {
    MethodRegistry::instance().create("fastkv", {{"tsp_layer", "9"}}, 5);
  });
  EXPECT_EQ(std::string(deep_cli.what()).rfind("--tsp-layer 9 is not below", 0), 0u)
      << deep_cli.what();
}

TEST(OptionSchema, OptionTextIsTheShortestThatReadsBack) {
  EXPECT_EQ(option_text(OptionValue(0.1)), "0.1");
  EXPECT_EQ(option_text(OptionValue(int64_t{8})), "8");
  EXPECT_EQ(option_text(OptionValue(1.0 / 3)), "0.3333333333333333");
  EXPECT_EQ(option_text(OptionValue(std::string("none"))), "none");
}

// `fastkv bench --methods fastkv,snapkv --retain-rate 0.3` used to run fastkv silently at its
// default 0.1 (0.3 is above its tsp_rate) beside snapkv at 0.3: now an error naming the method,
// while a per-method value works.
TEST(MethodList, SharedOptionABadValueForOneMethodIsAnError) {
  auto specs = parse_method_list("fastkv,snapkv");
  try {
    resolve_methods(specs, {{"retain_rate", "0.3"}}, 5, nullptr);
    ADD_FAILURE() << "fastkv ran without --retain-rate 0.3";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("--retain-rate 0.3 is above"), std::string::npos) << m;
    EXPECT_NE(m.find("method 'fastkv'"), std::string::npos) << m;
    EXPECT_NE(m.find("fastkv:retain_rate="), std::string::npos) << m;
  }
  // Per method: explicit values for each.
  specs = parse_method_list("fastkv:retain_rate=0.1,snapkv:retain_rate=0.3");
  std::vector<std::string> notes;
  resolve_methods(specs, {}, 5, &notes);
  EXPECT_EQ(specs[0].label, "fastkv:retain_rate=0.1");
  EXPECT_EQ(specs[1].label, "snapkv:retain_rate=0.3");
  EXPECT_TRUE(notes.empty());
  // A shared option a method does not have at all: that method runs without it, with a note.
  specs = parse_method_list("fastkv,snapkv");
  resolve_methods(specs, {{"tsp_rate", "0.3"}}, 5, &notes);
  EXPECT_EQ(specs[0].label, "fastkv:tsp_rate=0.3");
  EXPECT_EQ(specs[1].label, "snapkv");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("method 'snapkv' runs without --tsp-rate"), std::string::npos)
      << notes[0];
}

// The flags of `run` (and bench, eval, serve) come from the schemas: every option key of every
// method is a flag, with its help text.
TEST(MethodFlags, RunHelpListsEverySchemaOption) {
  const test::CommandResult r = test::run_fastkv("run --help");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& o : MethodRegistry::instance().all_options()) {
    const std::string flag = flag_name(o.spec.key);
    const size_t at = r.out.find(flag);
    ASSERT_NE(at, std::string::npos) << flag << "\n" << r.out;
    EXPECT_NE(r.out.find(o.spec.help.substr(0, 20), at), std::string::npos) << flag;
  }
  // The bench mixed case from the command line: an error, exit status 1, naming the method.
  const test::CommandResult b = test::run_fastkv(
      "bench -m " + test::shell_quote(test::shared_path("models/stories260K.gguf")) +
      " -p 64 -n 1 -r 1 --warmup 0 --methods fastkv,snapkv --retain-rate 0.3");
  EXPECT_EQ(b.exit_code, 1) << b.err;
  EXPECT_NE(b.err.find("method 'fastkv'"), std::string::npos) << b.err;
}

}  // namespace
}  // namespace fastkv
