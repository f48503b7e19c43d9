#include "eval/words.h"

namespace fastkv::eval {

const std::vector<std::string>& adjective_list() {
  static const std::vector<std::string> kWords = {
      "able",   "ancient", "angry",  "anxious", "bitter",  "black",   "blue",     "bold",
      "brave",  "brief",   "bright", "broad",   "broken",  "busy",    "calm",     "careful",
      "cheap",  "clean",   "clever", "cold",    "cool",    "crisp",   "curious",  "damp",
      "dark",   "deep",    "dense",  "distant", "dry",     "dull",    "eager",    "early",
      "easy",   "elegant", "empty",  "endless", "exact",   "faint",   "fair",     "famous",
      "fancy",  "fast",    "fierce", "firm",    "flat",    "fresh",   "friendly", "frozen",
      "gentle", "giant",   "glad",   "golden",  "grand",   "gray",    "great",    "green",
      "happy",  "hard",    "heavy",  "hidden",  "hollow",  "honest",  "huge",     "humble",
      "icy",    "idle",    "jolly",  "keen",    "kind",    "large",   "late",     "lazy",
      "light",  "little",  "lively", "lonely",  "long",    "loud",    "lucky",    "mellow",
      "mighty", "mild",    "modern", "narrow",  "neat",    "nervous", "new",      "noble",
      "odd",    "old",     "orange", "pale",    "patient", "plain",   "polite",   "proud",
      "purple", "quick",   "quiet",  "rapid",   "rare",    "red",     "rich",     "rough",
      "round",  "royal",   "rusty",  "sad",     "salty",   "sharp",   "shiny",    "short",
      "shy",    "silent",  "silver", "simple",  "slow",    "small",   "smooth",   "soft",
      "solid",  "sour",    "spicy",  "steady",  "steep",   "stiff",   "strange",  "strong",
      "sturdy", "sudden",  "sunny",  "sweet",   "swift",   "tall",    "tame",     "tender",
      "thick",  "thin",    "tidy",   "tiny",    "tough",   "unusual", "vast",     "violet",
      "warm",   "weak",    "wet",    "white",   "wide",    "wild",    "wise",     "witty",
      "wooden", "yellow",  "young",  "zealous"};
  return kWords;
}

const std::vector<std::string>& noun_list() {
  static const std::vector<std::string> kWords = {
      "anchor",  "apple",   "arrow",    "badge",  "bakery",   "balloon",  "banana",  "basket",
      "beacon",  "bicycle", "blanket",  "bottle", "bridge",   "bucket",   "butter",  "cabin",
      "camera",  "candle",  "canyon",   "carpet", "castle",   "cellar",   "chair",   "cherry",
      "circle",  "cloud",   "comet",    "copper", "cottage",  "crystal",  "curtain", "desert",
      "diamond", "dolphin", "dragon",   "drum",   "eagle",    "engine",   "falcon",  "feather",
      "fence",   "forest",  "fountain", "garden", "giraffe",  "glacier",  "guitar",  "hammer",
      "harbor",  "helmet",  "island",   "jacket", "jungle",   "kettle",   "kitten",  "ladder",
      "lantern", "lemon",   "library",  "lizard", "magnet",   "maple",    "market",  "meadow",
      "mirror",  "monkey",  "mountain", "needle", "notebook", "ocean",    "orchard", "otter",
      "paddle",  "palace",  "parrot",   "pebble", "pencil",   "pepper",   "piano",   "pillow",
      "planet",  "pocket",  "pond",     "puzzle", "rabbit",   "radio",    "raven",   "ribbon",
      "river",   "rocket",  "saddle",   "sailor", "salmon",   "scarf",    "shadow",  "shelf",
      "shovel",  "silk",    "spider",   "spoon",  "squirrel", "stamp",    "statue",  "street",
      "sugar",   "summit",  "sunset",   "table",  "teapot",   "temple",   "thunder", "ticket",
      "tiger",   "tower",   "tractor",  "tunnel", "turtle",   "umbrella", "valley",  "velvet",
      "violin",  "wagon",   "walnut",   "window", "wizard",   "wolf",     "zebra"};
  return kWords;
}

}  // namespace fastkv::eval
