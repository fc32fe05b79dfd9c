// A small Kafka Streams application for the integration tests: counts the values of its input
// topic (a re-key, so Streams makes a repartition topic and a changelog topic of its own) and
// writes the counts to its output topic, with exactly-once v2 when asked. It runs with exactly
// the service's generated credentials; it exits 1 as soon as Streams fails, 0 when stopped.
import java.io.FileInputStream;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Produced;

public final class CountApp {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    try (FileInputStream in = new FileInputStream(args[0])) {
      props.load(in);
    }
    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(props.getProperty("input.topic"), Consumed.with(Serdes.String(), Serdes.String()))
        .groupBy((key, value) -> value, Grouped.with(Serdes.String(), Serdes.String()))
        .count()
        .toStream()
        .mapValues(count -> Long.toString(count))
        .to(props.getProperty("output.topic"), Produced.with(Serdes.String(), Serdes.String()));

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch stopped = new CountDownLatch(1);
    AtomicInteger exitCode = new AtomicInteger(0);
    streams.setUncaughtExceptionHandler(error -> {
      System.out.println("FAILED " + error);
      exitCode.set(1);
      stopped.countDown();
      return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    streams.setStateListener((now, before) -> {
      System.out.println("STATE " + now);
      if (now == KafkaStreams.State.ERROR) {
        exitCode.set(1);
        stopped.countDown();
      }
    });
    Runtime.getRuntime().addShutdownHook(new Thread(stopped::countDown));
    streams.start();
    stopped.await();
    streams.close();
    // halt, not exit: on SIGTERM this runs while the shutdown hooks do, and exit would block.
    Runtime.getRuntime().halt(exitCode.get());
  }
}
