"""Topic vocabularies for the synthetic corpus: 24 domains x 12 subtopics = 288 topics.

Real English words, so that a sentence-embedding model clusters documents by domain
and subtopic as it does real text.
"""

from __future__ import annotations

DOMAINS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "astronomy": (
        ("telescopes", "exoplanets", "black holes", "galaxies", "comets", "nebulae",
         "moon phases", "solar flares", "dark matter", "meteor showers", "pulsars",
         "star clusters"),
        ("orbit", "light", "star", "planet", "observatory", "gravity", "cosmic", "sky",
         "astronomer", "spectrum", "universe", "eclipse", "lens", "radiation", "night"),
    ),
    "cooking": (
        ("sourdough bread", "pasta sauces", "knife skills", "fermentation", "grilling",
         "pastry", "spice blends", "soup stocks", "vegetarian meals", "baking cakes",
         "curry", "food safety"),
        ("recipe", "oven", "flour", "kitchen", "flavor", "ingredients", "chef", "simmer",
         "dough", "butter", "salt", "heat", "taste", "pan", "dinner"),
    ),
    "finance": (
        ("index funds", "mortgages", "retirement savings", "stock options", "inflation",
         "credit scores", "bond yields", "budgeting", "tax planning", "cryptocurrency",
         "dividends", "insurance"),
        ("money", "investment", "market", "interest", "bank", "portfolio", "risk", "loan",
         "savings", "returns", "capital", "debt", "price", "income", "account"),
    ),
    "gardening": (
        ("tomato plants", "composting", "pruning roses", "raised beds", "seed starting",
         "houseplants", "lawn care", "herb gardens", "pest control", "fruit trees",
         "succulents", "irrigation"),
        ("soil", "garden", "water", "leaves", "roots", "sunlight", "plant", "grow",
         "bloom", "fertilizer", "season", "harvest", "shade", "mulch", "weeds"),
    ),
    "programming": (
        ("python decorators", "memory leaks", "unit testing", "database indexes",
         "async io", "garbage collection", "type systems", "code review", "regular expressions",
         "concurrency bugs", "api design", "compilers"),
        ("code", "function", "software", "bug", "developer", "library", "compile", "variable",
         "runtime", "debugging", "performance", "module", "program", "thread", "algorithm"),
    ),
    "medicine": (
        ("vaccines", "blood pressure", "antibiotics", "sleep disorders", "diabetes",
         "physical therapy", "allergies", "heart disease", "migraines", "nutrition",
         "mental health", "surgery recovery"),
        ("patient", "doctor", "symptoms", "treatment", "health", "clinic", "disease",
         "diagnosis", "medication", "hospital", "therapy", "chronic", "immune", "dose", "care"),
    ),
    "history": (
        ("roman empire", "industrial revolution", "medieval castles", "ancient egypt",
         "cold war", "renaissance art", "silk road", "world war", "viking raids",
         "french revolution", "samurai", "ancient greece"),
        ("empire", "century", "war", "king", "ancient", "battle", "dynasty", "historian",
         "kingdom", "trade", "revolution", "archive", "ruler", "era", "conquest"),
    ),
    "music": (
        ("jazz improvisation", "guitar chords", "piano practice", "music theory", "orchestras",
         "songwriting", "drum rhythms", "opera", "electronic synthesizers", "choir singing",
         "vinyl records", "film scores"),
        ("melody", "rhythm", "harmony", "musician", "instrument", "song", "concert", "tempo",
         "notes", "sound", "band", "composer", "album", "chord", "performance"),
    ),
    "sports": (
        ("marathon training", "football tactics", "tennis serves", "swimming technique",
         "basketball drills", "cycling races", "olympic games", "strength training",
         "yoga", "rock climbing", "golf swings", "baseball pitching"),
        ("team", "coach", "athlete", "training", "match", "score", "fitness", "season",
         "player", "championship", "endurance", "league", "speed", "muscle", "game"),
    ),
    "travel": (
        ("backpacking europe", "cheap flights", "japan itineraries", "road trips",
         "travel insurance", "packing lists", "national parks", "cruise ships",
         "solo travel", "visa rules", "island hopping", "train journeys"),
        ("trip", "journey", "hotel", "passport", "tourist", "destination", "luggage",
         "airport", "booking", "adventure", "city", "guide", "vacation", "route", "border"),
    ),
    "climate": (
        ("sea level rise", "carbon capture", "heat waves", "glacier melt", "renewable energy",
         "wildfires", "ocean acidification", "climate policy", "droughts", "emissions trading",
         "hurricanes", "reforestation"),
        ("climate", "carbon", "temperature", "warming", "emissions", "weather", "ocean",
         "energy", "atmosphere", "environment", "ice", "storm", "dioxide", "greenhouse", "rain"),
    ),
    "photography": (
        ("portrait lighting", "landscape composition", "film cameras", "night photography",
         "photo editing", "macro lenses", "street photography", "wildlife photography",
         "exposure settings", "drone photography", "black and white", "studio flash"),
        ("camera", "photo", "lens", "shutter", "aperture", "image", "light", "focus",
         "photographer", "frame", "pixels", "shot", "color", "sensor", "picture"),
    ),
    "law": (
        ("contract disputes", "copyright", "tenant rights", "criminal trials", "patents",
         "privacy regulation", "employment law", "divorce proceedings", "immigration law",
         "small claims", "wills and estates", "antitrust"),
        ("court", "lawyer", "judge", "legal", "case", "rights", "statute", "ruling", "trial",
         "evidence", "attorney", "law", "appeal", "liability", "defendant"),
    ),
    "education": (
        ("online courses", "exam preparation", "early reading", "homeschooling",
         "university admissions", "teacher training", "math anxiety", "language learning",
         "student loans", "classroom technology", "special education", "study habits"),
        ("student", "teacher", "school", "learning", "lesson", "classroom", "curriculum",
         "exam", "education", "grade", "homework", "study", "knowledge", "course", "skills"),
    ),
    "automotive": (
        ("electric cars", "engine maintenance", "tire pressure", "car insurance",
         "self driving", "oil changes", "hybrid vehicles", "brake repair", "car buying",
         "racing cars", "battery range", "vintage cars"),
        ("car", "vehicle", "engine", "driver", "road", "fuel", "wheel", "mechanic", "speed",
         "highway", "garage", "motor", "transmission", "mileage", "dealer"),
    ),
    "pets": (
        ("puppy training", "cat behavior", "aquarium fish", "dog nutrition", "pet adoption",
         "bird care", "veterinary visits", "horse riding", "reptile habitats",
         "grooming", "pet insurance", "rabbit care"),
        ("pet", "dog", "cat", "animal", "vet", "food", "owner", "breed", "play", "leash",
         "fur", "shelter", "toy", "cage", "walk"),
    ),
    "architecture": (
        ("gothic cathedrals", "modern skyscrapers", "sustainable buildings", "bridges",
         "urban planning", "interior design", "brutalism", "timber frames", "housing policy",
         "historic preservation", "concrete", "landscape architecture"),
        ("building", "design", "architect", "structure", "city", "space", "construction",
         "facade", "tower", "material", "floor", "urban", "style", "wall", "plan"),
    ),
    "psychology": (
        ("memory formation", "habit change", "cognitive biases", "child development",
         "motivation", "anxiety", "personality tests", "social influence", "decision making",
         "emotional intelligence", "procrastination", "dreams"),
        ("mind", "behavior", "brain", "emotion", "psychologist", "study", "thinking",
         "research", "mental", "perception", "attention", "feelings", "cognitive",
         "experiment", "stress"),
    ),
    "economics": (
        ("supply chains", "minimum wage", "central banks", "trade tariffs", "unemployment",
         "housing markets", "globalization", "recessions", "productivity", "public debt",
         "labor markets", "economic growth"),
        ("economy", "growth", "policy", "wages", "prices", "demand", "supply", "trade",
         "market", "jobs", "government", "economist", "inflation", "output", "sector"),
    ),
    "biology": (
        ("dna replication", "evolution", "cell division", "photosynthesis", "microbiome",
         "ecosystems", "genetic engineering", "protein folding", "neurons", "bird migration",
         "coral reefs", "viruses"),
        ("cell", "species", "gene", "organism", "protein", "biology", "evolution", "life",
         "molecule", "tissue", "enzyme", "habitat", "bacteria", "genome", "nature"),
    ),
    "chemistry": (
        ("chemical bonds", "acids and bases", "polymers", "catalysts", "batteries chemistry",
         "organic synthesis", "periodic table", "electrochemistry", "crystals",
         "lab safety", "reaction rates", "nanomaterials"),
        ("reaction", "molecule", "atom", "chemical", "compound", "element", "solution",
         "laboratory", "electron", "bond", "chemist", "acid", "metal", "energy", "formula"),
    ),
    "gaming": (
        ("strategy games", "speedrunning", "game design", "esports", "retro consoles",
         "role playing games", "board games", "virtual reality", "indie games",
         "game engines", "multiplayer servers", "puzzle games"),
        ("game", "player", "level", "console", "controller", "quest", "graphics", "score",
         "gamer", "multiplayer", "character", "studio", "play", "map", "boss"),
    ),
    "fashion": (
        ("sustainable clothing", "tailoring", "sneakers", "vintage fashion", "fabric care",
         "runway shows", "capsule wardrobes", "jewelry", "leather goods", "streetwear",
         "textile dyes", "knitting"),
        ("clothing", "style", "fabric", "designer", "wear", "dress", "trend", "collection",
         "shoes", "cotton", "pattern", "outfit", "brand", "color", "wardrobe"),
    ),
    "energy": (
        ("solar panels", "wind turbines", "nuclear power", "power grids", "heat pumps",
         "hydrogen fuel", "energy storage", "geothermal", "oil refining", "smart meters",
         "home insulation", "hydroelectric dams"),
        ("power", "electricity", "energy", "grid", "turbine", "solar", "watt", "fuel",
         "generation", "efficiency", "plant", "voltage", "utility", "storage", "heat"),
    ),
}

TITLE_TEMPLATES = (
    "A practical guide to {sub}",
    "What everyone gets wrong about {sub}",
    "{Sub}: lessons from {domain} experts",
    "Understanding {sub} in modern {domain}",
    "Ten questions about {sub}",
    "How {sub} changed {domain}",
    "The beginner's handbook of {sub}",
    "Notes on {sub} and {word}",
)

BODY_TEMPLATES = (
    "This article explains {sub} with examples about {w1} and {w2}.",
    "Experts in {domain} discuss how {sub} relates to {w1}, {w2} and {w3}.",
    "When it comes to {sub}, the {w1} matters more than the {w2}.",
    "Many people ask how {w1} affects {sub}; the answer involves {w2} and {w3}.",
    "A short history of {sub}, from early {w1} to today's {w2}.",
    "Common mistakes with {sub} include ignoring the {w1} and rushing the {w2}.",
    "We compare approaches to {sub} and measure their effect on {w1}.",
)

FILLER = (
    "the", "a", "and", "with", "for", "about", "more", "simple", "important", "new",
    "common", "best", "useful", "careful", "local", "small", "large", "daily", "modern",
)

QUERY_TEMPLATES = (
    "how does {sub} work",
    "{sub} tips",
    "best way to learn {sub}",
    "{sub} and {w1}",
    "what is {sub}",
    "{w1} for {sub}",
    "problems with {sub} {w1}",
    "{domain} {sub} guide",
)
