"""Quickstart: rank a real web query's candidates with ranker-sdk.

python examples/quickstart.py                 # the bundled default package
python examples/quickstart.py path/to/package # any package (directory or .tar.gz)
"""

import sys

from ranker_sdk import Ranker

package = sys.argv[1] if len(sys.argv) > 1 else None
ranker = Ranker.load(package, threads=1)  # verifies the package's manifest before reading it

query = "is pew research trustworthy"
docs = [
    "Bananas are a good source of potassium and vitamin B6.",
    {
        "title": "Pew Research Center",
        "text": "Pew Research Center is a nonpartisan fact tank that "
        "informs the public about issues, attitudes and trends, and is widely cited for its methodology.",
    },
    "How to fix a leaking kitchen faucet in five steps.",
    {
        "title": "Media Bias/Fact Check",
        "text": "We rate the Pew Research Center least biased and very "
        "high for factual reporting due to proper sourcing and transparent methods.",
    },
]

for hit in ranker.rank(query, docs, top_k=3):  # best first
    text = hit.doc if isinstance(hit.doc, str) else hit.doc["title"]
    print(f"{hit.score:+.3f}  #{hit.index}  {text}")

scores = ranker.score(query, docs)  # float32, in the order of docs
print("scores in input order:", [round(float(s), 3) for s in scores])
