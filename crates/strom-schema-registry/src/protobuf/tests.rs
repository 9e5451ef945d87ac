use super::*;

fn p(text: &str) -> ProtobufSchema {
    parse(text, &[]).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn smoke() {
    let s = p("syntax = \"proto3\";\npackage a.b;\nmessage M { int32 x = 1; map<string, M> m = 2; oneof o { string s = 3; } reserved 5, 7 to 9; reserved \"q\"; }\nenum E { A = 0; }\n");
    println!("{}", s.canonical());
    println!("{}", s.normalized());
}

#[test]
fn scratch_confluent_examples() {
    let Ok(text) = std::fs::read_to_string("/tmp/diffex.json") else {
        return;
    };
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut failed = 0;
    for (i, c) in cases.as_array().unwrap().iter().enumerate() {
        let deps = |k: &str| -> Vec<(String, String)> {
            c.get(k)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .map(|d| {
                            (
                                d["name"].as_str().unwrap().to_owned(),
                                d["dependency"].as_str().unwrap().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let od = deps("original_dependencies");
        let ud = deps("update_dependencies");
        let od: Vec<(&str, &str)> = od.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let ud: Vec<(&str, &str)> = ud.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let o = parse(c["original_schema"].as_str().unwrap(), &od);
        let u = parse(c["update_schema"].as_str().unwrap(), &ud);
        let (o, u) = match (o, u) {
            (Ok(o), Ok(u)) => (o, u),
            (o, u) => {
                println!("#{i} PARSE {:?} {:?}", o.err(), u.err());
                failed += 1;
                continue;
            }
        };
        let mut got = u.differences_from(&o);
        let mut want: Vec<String> = c["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        got.sort();
        want.sort();
        let compatible = u.compatibility_errors_as(&o, "new", "old").is_empty();
        if got != want || compatible != c["compatible"].as_bool().unwrap() {
            failed += 1;
            println!("#{i} {}: got {got:?} want {want:?}", c["description"]);
        }
    }
    println!("failed {failed}");
}
