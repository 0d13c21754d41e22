# The seed tutorial's first task: a median function that handles the edge cases.
def median(numbers):
    if not numbers:
        raise ValueError("median of an empty list")
    ordered = sorted(numbers)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


for case in ([3, 1, 2], [4, 1, 3, 2], [7], [-5, 0, 5, 10]):
    print(case, "->", median(case))
try:
    median([])
except ValueError as e:
    print("[] ->", e)
