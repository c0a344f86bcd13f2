"""Word lists for the text invariance perturbations: first names, places, contractions, neutral clauses.

The lists are small on purpose (enough variety for invariance tests, small enough to read). Names
and places cover many regions so that a swap tests more than one culture; every entry is a
single capitalised token or a fixed multi-word place name.
"""

from __future__ import annotations

#: ~100 common first names from many regions (English, Spanish, Arabic, Hindi, Chinese, Japanese,
#: Korean, Yoruba, Swahili, Slavic, Nordic, ...), written in Latin script.
FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Emily",
    "Sarah", "Thomas", "Emma", "Oliver", "Sophie", "Jack", "Grace", "Daniel", "Laura", "Peter",
    "Maria", "Jose", "Carmen", "Juan", "Lucia", "Carlos", "Sofia", "Diego", "Valentina", "Mateo",
    "Mohammed", "Fatima", "Ahmed", "Aisha", "Omar", "Layla", "Yusuf", "Zainab", "Ali", "Mariam",
    "Priya", "Rahul", "Ananya", "Arjun", "Deepika", "Vikram", "Lakshmi", "Ravi", "Sunita", "Amit",
    "Wei", "Mei", "Jing", "Li", "Xin", "Hao", "Yan", "Chen", "Lin", "Jun",
    "Haruto", "Yuki", "Sakura", "Kenji", "Aiko", "Hiroshi", "Minji", "Jisoo", "Seojun", "Hyun",
    "Chinedu", "Ngozi", "Oluwaseun", "Amara", "Kwame", "Abena", "Wanjiru", "Baraka", "Zola", "Thabo",
    "Ivan", "Olga", "Dmitri", "Anastasia", "Piotr", "Katarzyna", "Lars", "Ingrid", "Sven", "Astrid",
    "Luca", "Giulia", "Pierre", "Camille", "Hans", "Greta", "Nikos", "Eleni", "Mehmet", "Elif",
)

CITIES: tuple[str, ...] = (
    "London", "Paris", "Berlin", "Madrid", "Rome", "Lisbon", "Amsterdam", "Vienna", "Prague", "Warsaw",
    "Stockholm", "Oslo", "Helsinki", "Athens", "Istanbul", "Cairo", "Lagos", "Nairobi", "Accra",
    "Johannesburg", "Casablanca", "Dubai", "Tehran", "Karachi", "Mumbai", "Delhi", "Dhaka", "Bangkok",
    "Jakarta", "Manila", "Singapore", "Shanghai", "Beijing", "Seoul", "Tokyo", "Osaka", "Sydney",
    "Melbourne", "Auckland", "Toronto", "Vancouver", "Chicago", "Boston", "Houston", "Seattle",
    "New York", "Los Angeles", "San Francisco", "Mexico City", "Lima", "Bogota", "Santiago",
    "Buenos Aires", "Sao Paulo", "Rio de Janeiro", "Hong Kong", "Kuala Lumpur", "Cape Town",
)

COUNTRIES: tuple[str, ...] = (
    "France", "Germany", "Spain", "Italy", "Portugal", "Poland", "Sweden", "Norway", "Finland",
    "Greece", "Turkey", "Egypt", "Nigeria", "Kenya", "Ghana", "Morocco", "Ethiopia", "Iran",
    "Pakistan", "India", "Bangladesh", "Thailand", "Indonesia", "Vietnam", "China", "Japan", "Korea",
    "Australia", "Canada", "Mexico", "Peru", "Colombia", "Chile", "Argentina", "Brazil", "Ireland",
    "Scotland", "Ukraine", "Russia", "Austria", "Switzerland", "Belgium", "Denmark", "Iceland",
    "Israel", "Jordan", "Lebanon", "Senegal", "Tanzania", "Uganda", "Malaysia", "Philippines",
    "South Africa", "New Zealand", "United States", "United Kingdom", "Saudi Arabia", "Sri Lanka",
)

#: canonical expansion -> contraction. Expanding a contraction always gives the form on the left
#: ("it's" -> "it is", never "it has"), so contract(expand(t)) == t and expand(contract(t)) == t
#: for text written with these forms. "I would" / "I had" are left out: "I'd" is ambiguous and
#: "I would not" reads better as "I wouldn't" than as "I'd not".
CONTRACTIONS: dict[str, str] = {
    "are not": "aren't", "cannot": "can't", "could not": "couldn't", "did not": "didn't",
    "does not": "doesn't", "do not": "don't", "had not": "hadn't", "has not": "hasn't",
    "have not": "haven't", "is not": "isn't", "must not": "mustn't", "should not": "shouldn't",
    "was not": "wasn't", "were not": "weren't", "will not": "won't", "would not": "wouldn't",
    "I am": "I'm", "I have": "I've", "I will": "I'll", "you are": "you're", "you have": "you've",
    "you will": "you'll", "we are": "we're", "we have": "we've", "they are": "they're",
    "they have": "they've", "it is": "it's", "that is": "that's", "there is": "there's",
    "what is": "what's", "he is": "he's", "she is": "she's", "let us": "let's",
}

#: full sentences that add nothing to what a text says (CheckList's "irrelevant" URLs and
#: handles, in prose form); each can stand before or after any text.
IRRELEVANT_CLAUSES: tuple[str, ...] = (
    "By the way, I read this on a Tuesday.",
    "I am writing this from my phone.",
    "This was posted in the evening.",
    "I wrote this note on the train.",
    "Sorry for any typos.",
    "It was raining outside when I wrote this.",
    "I am adding this to my list of notes.",
    "This is my first post here.",
    "Just sharing my thoughts.",
    "I had a cup of tea while writing this.",
    "Posted from a laptop.",
    "Edited for formatting.",
)
