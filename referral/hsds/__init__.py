"""Open Referral HSDS 3.0: the API at ``{prefix}/api/hsds/`` and the records it serves.

``records`` maps our listings to HSDS records (the one mapping; the open-data export uses it
too), ``queries`` chooses a list's rows, ``params`` reads a request's parameters, ``views``
answers, ``openapi`` serves Open Referral's document with its faults corrected, and
``document`` streams the whole directory as one HSDS JSON file.
"""
